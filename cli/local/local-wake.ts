import fs from 'node:fs';
import path from 'node:path';

/**
 * Wakes the schedulers of the other `dstack` processes of one DSTACK_HOME: when a job ends here
 * (so its CPUs, memory and GPUs are free again) this process writes a file that they all watch.
 */
export class LocalWake {
  private readonly file: string;
  private readonly watcher: fs.FSWatcher;

  constructor(home: string, onWake: () => void) {
    this.file = path.join(home, 'scheduler.wake');
    fs.appendFileSync(this.file, '');
    this.watcher = fs.watch(this.file, () => onWake());
    // Watching must never keep a finished command alive.
    this.watcher.unref();
  }

  notify(): void {
    fs.writeFileSync(this.file, `${process.pid} ${Date.now()}\n`);
  }

  close(): void {
    this.watcher.close();
  }
}
