import { describe, expect, it } from 'vitest';
import { GithubStore } from '../../../app/github/github-store.js';
import { Store } from '../../../app/store/store.js';
import { closeAfterTest, tempDir } from '../../helpers/cli.js';

const delivery = (id: string, body = `{"comment":"${id}"}`) => ({ id, event: 'issue_comment.created', name: 'issue_comment', payload: body, digest: `sha-of-${body}` });

describe('GithubStore deliveries', () => {
  it('takes a delivery once, and again only when a server stopped before its work was done', () => {
    const file = `${tempDir()}/dstack.db`;
    const first = new GithubStore(closeAfterTest(new Store(file)));
    expect(first.recordDelivery(delivery('d-1'), 0)).toBe('new');
    expect(first.recordDelivery(delivery('d-2'), 0)).toBe('new');
    first.deliveryHandled('d-1');
    expect(first.recordDelivery(delivery('d-1'), 0)).toBe('seen');
    // A restarted server (the same database): d-2 was taken but never done, so it is pending with its payload.
    const second = new GithubStore(closeAfterTest(new Store(file)));
    expect(second.pendingDeliveries()).toEqual([{ id: 'd-2', name: 'issue_comment', payload: { comment: 'd-2' }, arrival: undefined }]);
    expect(second.recordDelivery(delivery('d-1'), 0)).toBe('seen');
    expect(second.recordDelivery(delivery('d-2'), 0)).toBe('new');
    second.deliveryHandled('d-2');
    expect(second.recordDelivery(delivery('d-2'), 0)).toBe('seen');
    expect(second.pendingDeliveries()).toEqual([]);
  });

  it("remembers across a restart that a delivery's reply was posted and which run each of its keys started, one run per key", () => {
    const file = `${tempDir()}/dstack.db`;
    const first = new GithubStore(closeAfterTest(new Store(file)));
    first.recordDelivery(delivery('d-1'), 0);
    const origin = { installationId: 1, repoId: 2, repoOwner: 'octo', repoName: 'models', sha: 'abc', event: 'comment' as const, branch: 'main', issueNumber: 3, sender: 'alice', words: [] };
    first.putOrigin({ ...origin, runName: 'calm-otter-1' }, 'd-1#0');
    first.putOrigin({ ...origin, runName: 'calm-otter-2' });
    first.setReplied('d-1');
    expect(() => first.putOrigin({ ...origin, runName: 'calm-otter-3' }, 'd-1#0')).toThrow(/UNIQUE constraint failed: github_runs.delivery_key/);

    const second = new GithubStore(closeAfterTest(new Store(file)));
    expect(second.runOfDeliveryKey('d-1#0')).toBe('calm-otter-1');
    expect(second.runOfDeliveryKey('d-1#1')).toBeUndefined();
    expect(second.replied('d-1')).toBe(true);
    expect(second.replied('d-2')).toBe(false);
  });

  it('keeps what was read on arrival with a pending delivery, in the order deliveries came', () => {
    const store = new GithubStore(closeAfterTest(new Store(`${tempDir()}/dstack.db`)));
    for (const id of ['d-b', 'd-a', 'd-c']) store.recordDelivery(delivery(id), 0);
    store.setArrival('d-a', { sha: 'abc' });
    expect(store.pendingDeliveries().map((d) => [d.id, d.arrival])).toEqual([['d-b', undefined], ['d-a', { sha: 'abc' }], ['d-c', undefined]]);
  });

  it('takes a body sent again under a new delivery id as handled, until the body is older than the window', () => {
    const store = new GithubStore(closeAfterTest(new Store(`${tempDir()}/dstack.db`)));
    expect(store.recordDelivery(delivery('d-1', '{"same":1}'), 0, 1000)).toBe('new');
    expect(store.recordDelivery(delivery('d-2', '{"same":1}'), 500, 2000)).toBe('same-body');
    expect(store.pendingDeliveries().map((d) => d.id)).toEqual(['d-1']);
    expect(store.recordDelivery(delivery('d-2', '{"same":1}'), 500, 2000)).toBe('seen');
    // The first body was received at 1000: a window starting after it forgets the body.
    expect(store.recordDelivery(delivery('d-3', '{"same":1}'), 2500, 3000)).toBe('new');
  });
});
