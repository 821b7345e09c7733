import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { DstackError } from '../errors.js';

export interface Position {
  file: string;
  line: number;
  col: number;
}

export type Path = readonly (string | number)[];

/**
 * A YAML file turned into plain values, remembering where every key and value stands so that a
 * mistake found later (in validation or interpolation) can name the file, line and column.
 */
export class YamlFile {
  private readonly keyPositions = new Map<string, Position>();
  private readonly valuePositions = new Map<string, Position>();
  readonly value: unknown;

  constructor(readonly file: string, text: string) {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    const first = doc.errors[0];
    if (first) {
      const at = first.linePos?.[0] ?? lineCounter.linePos(first.pos[0]);
      const what = first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw new DstackError('DSTACK_ERR_YAML', `${file}:${at.line}:${at.col}: invalid YAML: ${what}`);
    }
    const position = (node: Node | null | undefined): Position | undefined => {
      const offset = node?.range?.[0];
      if (offset === undefined) return undefined;
      const { line, col } = lineCounter.linePos(offset);
      return { file, line, col };
    };
    this.value = this.convert(doc, doc.contents, [], position);
    const rootPos = position(doc.contents) ?? { file, line: 1, col: 1 };
    this.valuePositions.set(key([]), rootPos);
  }

  private convert(doc: Document, node: unknown, path: (string | number)[], position: (n: Node | null | undefined) => Position | undefined): unknown {
    if (node === null || node === undefined) return null;
    const here = position(node as Node);
    if (here) this.valuePositions.set(key(path), here);
    if (isAlias(node)) {
      try {
        return node.toJS(doc);
      } catch (err) {
        // The yaml library refuses aliases that expand to too much (an alias bomb): a bad file.
        const at = here ?? { file: this.file, line: 1, col: 1 };
        const why = err instanceof Error && /alias/i.test(err.message) ? 'aliases expand to too much data (an alias bomb)' : `alias *${node.source} cannot be resolved`;
        throw new DstackError('DSTACK_ERR_YAML', `${formatPosition(at)}: invalid YAML: ${why}; write the values out instead of using aliases`, { cause: err });
      }
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const childPath = [...path, k];
        const kp = position(pair.key as Node);
        if (kp) this.keyPositions.set(key(childPath), kp);
        out[k] = this.convert(doc, pair.value, childPath, position);
        if (!this.valuePositions.has(key(childPath)) && kp) this.valuePositions.set(key(childPath), kp);
      }
      return out;
    }
    if (isSeq(node)) return node.items.map((item, i) => this.convert(doc, item, [...path, i], position));
    if (isScalar(node)) {
      // Versions such as `python: 3.10` must keep the text the user wrote, not the float 3.1.
      if (typeof node.value === 'number' && path[path.length - 1] === 'python' && node.source) return node.source;
      return node.value;
    }
    return null;
  }

  /** Where the value at `path` stands, falling back to its closest ancestor. */
  at(path: Path): Position {
    for (let n = path.length; n >= 0; n--) {
      const p = this.valuePositions.get(key(path.slice(0, n)));
      if (p) return p;
    }
    return { file: this.file, line: 1, col: 1 };
  }

  /** Where the key that ends `path` stands (for "unknown key" errors). */
  keyAt(path: Path): Position {
    return this.keyPositions.get(key(path)) ?? this.at(path);
  }
}

function key(path: Path): string {
  return JSON.stringify(path);
}

export function formatPosition(p: Position): string {
  return `${p.file}:${p.line}:${p.col}`;
}
