import type { NextFunction, Request, Response } from 'express';

/**
 * Refuses a request whose declared Content-Length is over `maxBytes` with 413 at once, from its
 * header: what reads the body afterwards would find out only once that many bytes had come (or
 * wait for them until the request timed out, as express.json does), and the client would send
 * them all for nothing. The connection is closed after the answer, the body left unread. A body
 * sent without a length is counted by what reads it.
 */
export function bodyLimit(maxBytes: number, what: string, hint: string) {
  return (req: Request, res: Response, next: NextFunction) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (!(declared > maxBytes)) return next();
    res.set('connection', 'close');
    res.status(413).json({ error: `${what} of ${declared} bytes is over the ${maxBytes}-byte limit; ${hint}`, code: 'DSTACK_ERR_USAGE' });
  };
}
