/** The terminal every job sees, whichever way its pty is made. */
export const TERMINAL = { name: 'xterm-256color', cols: 120, rows: 40 } as const;
