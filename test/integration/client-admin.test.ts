/**
 * The client library's admin surface (client.admin) on a real cluster: every call gfsctl
 * makes answers through it, reads change nothing, and decommission drains and cancels.
 */
import t from 'tap';
import { cluster, MiB, patterned } from './helpers';

t.test('client: admin: status, nodes, fsck, gc, df, balance and decommission answer through the library', async (t) => {
  const { client } = await cluster(t, { heartbeatIntervalMs: 200, safeModeMinMs: 500 });
  const admin = client.admin;
  await client.put(patterned(3 * MiB, 5), '/logs/admin.bin', { chunkBytes: MiB });

  const status = await admin.status();
  t.equal(status.nodesAlive, 3, 'status: three chunkservers alive');
  t.equal(status.files, 1, 'status: one file');
  const all = await admin.statusAll();
  t.same(all.masters.map((m) => m.role), ['leader'], 'statusAll: a line for the one master');

  const { nodes } = await admin.nodes();
  t.equal(nodes.length, 3, 'nodes: every chunkserver');

  const fsck = await admin.fsck('/logs');
  t.equal(fsck.filesChecked, 1, 'fsck: the file under the path');
  t.equal(fsck.chunksChecked, 3, 'fsck: its three chunks');

  const gc = await admin.gc({ dryRun: true });
  t.equal(gc.ran, false, 'gc --dry-run runs no pass');

  const df = await admin.df();
  t.equal(df.nodes.length, 3, 'df: a row per node');
  t.ok(df.liveBytes >= 3 * MiB, 'df: the file counts as live');

  const balance = await admin.balance({ dryRun: true });
  t.equal(balance.ran, false, 'balance --dry-run moves nothing');
  t.equal(balance.nodes.length, 3, 'balance: every node in the plan');

  await t.rejects(admin.decommission('no-such-node'), { code: 'INVALID_ARGUMENT' }, 'decommission of an unknown node');
  const victim = nodes[0]!.id;
  const draining = await admin.decommission(victim);
  t.equal(draining.nodeId, victim);
  t.match(draining.state, /draining|decommissioned/, 'decommission starts a drain');
  const cancelled = await admin.decommission(victim, { cancel: true });
  t.equal(cancelled.state, 'alive', 'cancel: the node takes chunks again');
});
