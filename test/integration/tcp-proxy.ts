/**
 * A TCP proxy a test can cut and heal: the link between two processes, so a test can
 * partition real processes without root (no iptables). A cut resets every open
 * connection and every new one (like an iptables REJECT rule on the port); a heal
 * lets new connections through again. The target can be set after the proxy listens,
 * so a process can be told the proxy's address before the target's port is known.
 */
import net from 'node:net';

export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private isCut = false;
  target = '';

  private constructor(private readonly server: net.Server) {
    server.on('connection', (client) => this.accept(client));
  }

  static async start(host = '127.0.0.1'): Promise<TcpProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    return new TcpProxy(server);
  }

  get addr(): string {
    const a = this.server.address() as net.AddressInfo;
    return `${a.address}:${a.port}`;
  }

  get cut(): boolean { return this.isCut; }

  /** Resets every open connection and refuses new ones until heal(). */
  cutLink(): void {
    this.isCut = true;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
  }

  heal(): void { this.isCut = false; }

  async close(): Promise<void> {
    this.cutLink();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.isCut || this.target === '') {
      client.resetAndDestroy();
      return;
    }
    const i = this.target.lastIndexOf(':');
    const upstream = net.connect(Number(this.target.slice(i + 1)), this.target.slice(0, i));
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        // One side gone: the other goes too, as a real connection would.
        (s === client ? upstream : client).destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
