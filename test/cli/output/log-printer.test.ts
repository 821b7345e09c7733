import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LogPrinter } from '../../../cli/output/log-printer.js';

/** A terminal that takes a few bytes at a time, slowly: `write` reports it full almost at once. */
function slowTerminal() {
  const got: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: 16,
    write(chunk: Buffer, _enc, cb) {
      got.push(Buffer.from(chunk));
      setTimeout(cb, 1);
    },
  });
  return { stream, text: () => Buffer.concat(got).toString() };
}

describe('LogPrinter', () => {
  it('lets a slow terminal catch up from the stored logs, in order, with job headers', async () => {
    const logs = new Map<string, Buffer>([
      ['a', Buffer.alloc(0)],
      ['b', Buffer.alloc(0)],
    ]);
    const read = (jobId: string, offset: number, max: number) => logs.get(jobId)!.subarray(offset, offset + max);
    const term = slowTerminal();
    const printer = new LogPrinter(term.stream, new Map([['a', 'prepare'], ['b', 'train']]), false, read);
    const append = (jobId: string, text: string) => {
      const offset = logs.get(jobId)!.length;
      const data = Buffer.from(text);
      logs.set(jobId, Buffer.concat([logs.get(jobId)!, data]));
      printer.write(jobId, data, offset);
    };
    for (let i = 0; i < 50; i++) append('a', `a${i}\n`);
    printer.line('-- a note --');
    for (let i = 0; i < 50; i++) append('b', `b${i}\n`);
    expect(printer.backpressure()).toBeInstanceOf(Promise);
    await printer.finish();
    const expected =
      '── prepare ──\n' + Array.from({ length: 50 }, (_, i) => `a${i}\n`).join('') + '-- a note --\n' + '── train ──\n' + Array.from({ length: 50 }, (_, i) => `b${i}\n`).join('');
    expect(term.text()).toBe(expected);
    expect(printer.backpressure()).toBeUndefined();
  });

  it('stops writing, without failing, when the reader goes away', async () => {
    let writes = 0;
    const stream = new Writable({
      write(_chunk, _enc, cb) {
        writes++;
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const failed = new Promise((resolve) => stream.once('error', resolve));
    const printer = new LogPrinter(stream, new Map([['a', 'a']]), false);
    printer.write('a', Buffer.from('one\n'));
    await failed;
    expect(printer.closed).toBe(true);
    printer.write('a', Buffer.from('two\n'));
    printer.line('a note');
    await printer.finish();
    expect(printer.backpressure()).toBeUndefined();
    // Nothing more was written once the reader had gone.
    expect(writes).toBe(1);
  });
});
