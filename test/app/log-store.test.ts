import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LogStore } from '../../app/log-store.js';
import { tempDir } from '../helpers/cli.js';

describe('LogStore', () => {
  it('appends chunks in order and drops a chunk whose seq it already has', () => {
    const store = new LogStore(tempDir());
    expect(store.append('j', 1, 'one\n')).toBe(true);
    expect(store.append('j', 2, 'two\n')).toBe(true);
    expect(store.append('j', 2, 'two\n')).toBe(false);
    expect(store.append('j', 1, 'one\n')).toBe(false);
    expect(store.append('j', 3, 'three\n')).toBe(true);
    expect(store.read('j', 0).toString()).toBe('one\ntwo\nthree\n');
    expect(store.lastSeq('j')).toBe(3);
  });

  it('remembers the last seq across a restart, so a resend after it is not doubled', () => {
    const dir = tempDir();
    const first = new LogStore(dir);
    first.append('j', 1, 'a');
    first.append('j', 2, 'b');
    first.closeAll();
    const second = new LogStore(dir);
    expect(second.append('j', 2, 'b')).toBe(false);
    expect(second.append('j', 3, 'c')).toBe(true);
    expect(second.read('j', 0).toString()).toBe('abc');
  });

  it('cuts off log bytes the index never recorded (a crash between the two writes)', () => {
    const dir = tempDir();
    const store = new LogStore(dir);
    store.append('j', 1, 'kept');
    store.closeAll();
    fs.appendFileSync(path.join(dir, 'j.log'), 'torn');
    const again = new LogStore(dir);
    again.append('j', 2, '+next');
    expect(again.read('j', 0).toString()).toBe('kept+next');
  });

  it('reads from an offset, at most the bytes asked for', () => {
    const store = new LogStore(tempDir());
    store.append('j', 1, '0123456789');
    expect(store.read('j', 3, 4).toString()).toBe('3456');
    expect(store.read('missing', 0).length).toBe(0);
  });

  it('answers the last seq of a closed job without keeping its files open', () => {
    const dir = tempDir();
    const store = new LogStore(dir);
    store.append('j', 1, 'a');
    store.append('j', 2, 'b');
    const target = (fd: string) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return ''; // the fd readdir itself used, closed since
      }
    };
    const open = () => fs.readdirSync('/proc/self/fd').filter((fd) => target(fd).startsWith(dir)).length;
    expect(open()).toBe(2);
    store.close('j');
    expect(store.lastSeq('j')).toBe(2);
    expect(store.lastSeq('never')).toBe(0);
    expect(open()).toBe(0);
  });
});
