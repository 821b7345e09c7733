import { describe, expect, it } from 'vitest';
import { commentCommands, splitWords } from '../../../app/github/comment-commands.js';

describe('comment commands', () => {
  it('reads /dstack run with variables and arguments, as words', () => {
    expect(commentCommands('/dstack run train --epochs 3 --lr=0.1 data/x')).toEqual([
      { name: 'run', line: '/dstack run train --epochs 3 --lr=0.1 data/x', workflow: 'train', words: ['--epochs', '3', '--lr=0.1', 'data/x'] },
    ]);
  });

  it('counts each /dstack line and ignores the text around them (CRLF too)', () => {
    const body = 'Looks good, let us try:\r\n\r\n/dstack run prepare\r\nand then\r\n  /dstack run train --epochs 1\r\nthanks!\r\n/dstackish is not one';
    expect(commentCommands(body).map((c) => c.name === 'run' && [c.workflow, c.words])).toEqual([
      ['prepare', []],
      ['train', ['--epochs', '1']],
    ]);
  });

  it('ignores commands in fenced code blocks and quotes', () => {
    const body = ['> /dstack run train', '```', '/dstack run train', '```', '~~~sh', '/dstack stop', '~~~', '/dstack help'].join('\n');
    expect(commentCommands(body)).toEqual([{ name: 'help', line: '/dstack help' }]);
  });

  it('ignores commands in indented code blocks: four spaces or a tab, at the start or after a blank line, and the lines that continue the block', () => {
    const body = ['    /dstack run first', '', 'Try this:', '', '    /dstack run train', '', '    /dstack stop', '\t/dstack tag slim-octopus-3 x', '  \t/dstack run tabbed', '/dstack help'].join('\n');
    expect(commentCommands(body)).toEqual([{ name: 'help', line: '/dstack help' }]);
  });

  it('runs an indented command that continues a paragraph, as Markdown shows it as text', () => {
    expect(commentCommands('Please run\n    /dstack run train\n   /dstack stop').map((c) => c.line)).toEqual(['/dstack run train', '/dstack stop']);
  });

  it('starts an indented code block after a heading, a fence or a thematic break, and ends it at a line indented less', () => {
    const body = ['# Plan', '    /dstack run a', '```', '```', '    /dstack run b', '***', '    /dstack run c', '', '    code', '/dstack run d'].join('\n');
    expect(commentCommands(body).map((c) => c.line)).toEqual(['/dstack run d']);
  });

  it('reads a fence indented four spaces as code, not as a fence', () => {
    expect(commentCommands(['    ```', '/dstack run train', '    ```'].join('\n')).map((c) => c.line)).toEqual(['/dstack run train']);
  });

  it('splits quoted arguments as a shell would and never evaluates them', () => {
    const [run] = commentCommands(`/dstack run train --name "my run" 'it''s' $HOME \`id\` a\\ b "q\\"x" "\\d"`);
    expect(run).toMatchObject({ workflow: 'train', words: ['--name', 'my run', 'its', '$HOME', '`id`', 'a b', 'q"x', '\\d'] });
  });

  it('reads stop, tag and help', () => {
    expect(commentCommands('/dstack stop\n/dstack stop slim-octopus-3\n/dstack tag slim-octopus-3 latest\n/dstack help\n/dstack')).toEqual([
      { name: 'stop', line: '/dstack stop' },
      { name: 'stop', line: '/dstack stop slim-octopus-3', run: 'slim-octopus-3' },
      { name: 'tag', line: '/dstack tag slim-octopus-3 latest', run: 'slim-octopus-3', tag: 'latest' },
      { name: 'help', line: '/dstack help' },
      { name: 'help', line: '/dstack' },
    ]);
  });

  it('says what is wrong with a line that is not a command', () => {
    const errors = commentCommands(
      ['/dstack deploy x', '/dstack run', '/dstack run "train', '/dstack tag slim-octopus-3', '/dstack stop a b', '/dstack tag slim-octopus-3 "bad tag"', '/dstack run ../x'].join('\n'),
    ).map((c) => (c.name === 'invalid' ? c.error : c.name));
    expect(errors).toEqual([
      "unknown command 'deploy'; the commands are run, stop, tag and help ('/dstack help')",
      "'/dstack run' needs a workflow: /dstack run WORKFLOW [--NAME VALUE] [ARGS]",
      'unclosed " in: /dstack run "train',
      "'/dstack tag' needs a run and a tag: /dstack tag RUN TAG",
      "'/dstack stop' takes one run at most: /dstack stop [RUN]",
      "invalid tag 'bad tag': letters, digits, '_', '.' and '-'",
      "invalid workflow name '../x': letters, digits, '_', '.' and '-'",
    ]);
  });

  it('finds nothing in a comment without commands', () => {
    expect(commentCommands('Nice work! I ran dstack run train locally.')).toEqual([]);
  });
});

describe('splitWords', () => {
  it('keeps empty quoted words and collapses whitespace', () => {
    expect(splitWords(`a  ''  "" b\tc`)).toEqual(['a', '', '', 'b', 'c']);
  });
});
