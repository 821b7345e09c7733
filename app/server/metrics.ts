/**
 * The server's metrics in Prometheus' text format (version 0.0.4): counters, gauges and
 * histograms with labels, kept in memory, written at scrape time.
 */
type Labels = Record<string, string>;

interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  write(): string[];
}

const key = (labels: Labels) => JSON.stringify(Object.entries(labels).sort());
const format = (labels: Labels) => {
  const parts = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
};

export class Counter implements Metric {
  readonly type = 'counter';
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const entry = this.values.get(k) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(k, entry);
  }

  write(): string[] {
    return [...this.values.values()].map((e) => `${this.name}${format(e.labels)} ${e.value}`);
  }
}

export class Gauge implements Metric {
  readonly type = 'gauge';
  constructor(
    readonly name: string,
    readonly help: string,
    /** Read at scrape time. */
    private readonly read: () => { labels?: Labels; value: number }[],
  ) {}

  write(): string[] {
    return this.read().map((e) => `${this.name}${format(e.labels ?? {})} ${e.value}`);
  }
}

export class Histogram implements Metric {
  readonly type = 'histogram';
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly name: string, readonly help: string, private readonly buckets: number[]) {
    this.counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    this.buckets.forEach((le, i) => {
      if (value <= le) this.counts[i]!++;
    });
    this.sum += value;
    this.count++;
  }

  write(): string[] {
    return [
      ...this.buckets.map((le, i) => `${this.name}_bucket{le="${le}"} ${this.counts[i]}`),
      `${this.name}_bucket{le="+Inf"} ${this.count}`,
      `${this.name}_sum ${this.sum}`,
      `${this.name}_count ${this.count}`,
    ];
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];

  add<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }

  text(): string {
    return this.metrics.map((m) => [`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.write()].join('\n')).join('\n') + '\n';
  }
}
