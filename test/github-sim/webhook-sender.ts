import crypto from 'node:crypto';
import type { SchemaValidator } from './schema-validator.js';

export interface DeliveryAttempt {
  at: string;
  /** The app's HTTP status, or null when it could not be reached. */
  status: number | null;
  response: string;
  error: string | null;
}

export interface Delivery {
  id: string;
  event: string;
  action: string | null;
  /** The name of its schema in webhooks-subset.json (e.g. `issue-comment-created`). */
  name: string;
  body: string;
  installationId: number | null;
  attempts: DeliveryAttempt[];
}

/** GitHub waits 10 s for the app's answer, then counts the delivery as failed. */
const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * Validates each payload against its official schema, signs it (`X-Hub-Signature-256`, HMAC-SHA256
 * of the exact body with the webhook secret) and POSTs it to the app as GitHub does. Every delivery
 * is kept, so that a test can look at it or have it sent again with the same id.
 */
export class WebhookSender {
  readonly deliveries = new Map<string, Delivery>();

  constructor(
    private readonly validator: SchemaValidator,
    readonly secret: string,
    readonly appId: number,
    public url: string | null,
    private readonly onSchemaProblem: (problem: string) => void,
  ) {}

  sign(body: string): string {
    return `sha256=${crypto.createHmac('sha256', this.secret).update(body).digest('hex')}`;
  }

  /** Validates, records and sends one event; resolves once the app answered (or could not be reached). */
  async send(name: string, payload: Record<string, unknown>): Promise<Delivery> {
    const hook = this.validator.webhooks.webhooks[name];
    const problem = this.validator.validateWebhook(name, payload);
    if (problem) {
      this.onSchemaProblem(`webhook ${name}: ${problem}`);
      throw new Error(`github-sim: the ${name} webhook it built breaks GitHub's schema: ${problem}`);
    }
    const installation = payload.installation as { id: number } | undefined;
    const delivery: Delivery = {
      id: crypto.randomUUID(), event: hook.event, action: hook.action, name, body: JSON.stringify(payload),
      installationId: installation?.id ?? null, attempts: [],
    };
    this.deliveries.set(delivery.id, delivery);
    await this.deliver(delivery);
    return delivery;
  }

  /** Sends a recorded delivery again, with the same `X-GitHub-Delivery`, as GitHub's "Redeliver" does. */
  async redeliver(id: string): Promise<Delivery | null> {
    const delivery = this.deliveries.get(id);
    if (!delivery) return null;
    await this.deliver(delivery, true);
    return delivery;
  }

  headers(delivery: Delivery, redelivery = false): Record<string, string> {
    return {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/github-sim',
      'x-github-event': delivery.event,
      'x-github-delivery': delivery.id,
      'x-github-hook-id': '1',
      'x-github-hook-installation-target-id': String(this.appId),
      'x-github-hook-installation-target-type': 'integration',
      'x-hub-signature': `sha1=${crypto.createHmac('sha1', this.secret).update(delivery.body).digest('hex')}`,
      'x-hub-signature-256': this.sign(delivery.body),
      ...(redelivery ? { 'x-github-redelivery': 'true' } : {}),
    };
  }

  private async deliver(delivery: Delivery, redelivery = false): Promise<void> {
    const attempt: DeliveryAttempt = { at: new Date().toISOString(), status: null, response: '', error: null };
    delivery.attempts.push(attempt);
    if (!this.url) {
      attempt.error = 'no webhook URL is set (startGithubSim({webhookUrl}) or PUT /_sim/webhook)';
      return;
    }
    try {
      const res = await fetch(this.url, { method: 'POST', headers: this.headers(delivery, redelivery), body: delivery.body, signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) });
      attempt.status = res.status;
      attempt.response = (await res.text()).slice(0, 2000);
    } catch (err) {
      attempt.error = (err as Error).message;
    }
  }
}
