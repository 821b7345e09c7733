const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;

function line(cells: string[], widths: number[]): string {
  return cells
    .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(Math.max(0, widths[i]! - visible(c)))))
    .join('  ')
    .trimEnd();
}

/** Prints rows as aligned columns; colour codes do not count towards a column's width. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
  return [line(header, widths), ...rows.map((r) => line(r, widths))].join('\n') + '\n';
}

/**
 * A table printed a page of rows at a time, for listings too long to hold: the header comes with
 * the first page, and columns widen (never narrow) as later pages need.
 */
export class TableWriter {
  private widths: number[] | undefined;

  constructor(private readonly header: string[]) {}

  page(rows: string[][]): string {
    const first = !this.widths;
    const widths = this.header.map((h, i) => Math.max(this.widths?.[i] ?? visible(h), ...rows.map((r) => visible(r[i] ?? ''))));
    this.widths = widths;
    const lines = rows.map((r) => line(r, widths));
    if (first) lines.unshift(line(this.header, widths));
    return lines.length > 0 ? lines.join('\n') + '\n' : '';
  }
}
