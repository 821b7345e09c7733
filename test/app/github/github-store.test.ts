import { describe, expect, it } from 'vitest';
import { GithubStore } from '../../../app/github/github-store.js';
import { Store } from '../../../app/store/store.js';
import { closeAfterTest, tempDir } from '../../helpers/cli.js';

describe('GithubStore deliveries', () => {
  it('takes a delivery once, and again only when a server stopped before its work was done', () => {
    const file = `${tempDir()}/dstack.db`;
    const first = new GithubStore(closeAfterTest(new Store(file)));
    expect(first.recordDelivery('d-1', 'issue_comment.created')).toBe(true);
    expect(first.recordDelivery('d-2', 'issue_comment.created')).toBe(true);
    first.deliveryHandled('d-1');
    expect(first.recordDelivery('d-1', 'issue_comment.created')).toBe(false);
    // A restarted server (the same database): d-2 was taken but never done, so its redelivery acts.
    const second = new GithubStore(closeAfterTest(new Store(file)));
    expect(second.recordDelivery('d-1', 'issue_comment.created')).toBe(false);
    expect(second.recordDelivery('d-2', 'issue_comment.created')).toBe(true);
    second.deliveryHandled('d-2');
    expect(second.recordDelivery('d-2', 'issue_comment.created')).toBe(false);
  });
});
