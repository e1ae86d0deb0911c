import { createServer, connect, type Socket } from "node:net";

export interface TcpProxy {
  /** the loopback port the proxy listens on */
  port: number;
  /** Destroys every open connection (both sides) and destroys each new one as soon as it arrives. */
  cut(): void;
  /** Accepts and forwards connections again. */
  restore(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1 for fault injection: forwards each connection to targetHost:targetPort until cut().
 * Cutting looks to both ends like the network went away (connections reset), not like a clean shutdown.
 */
export async function startProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let down = false;
  const open = new Set<Socket>();
  const track = (s: Socket) => {
    open.add(s);
    s.once("close", () => open.delete(s));
    // a reset is what cut() is for: never let it surface as an unhandled error
    s.on("error", () => {});
  };
  const destroyAll = () => {
    for (const s of open) s.destroy();
    open.clear();
  };

  const server = createServer((client) => {
    track(client);
    if (down) return void client.destroy();
    const upstream = connect(targetPort, targetHost);
    track(upstream);
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  return {
    port,
    cut() {
      down = true;
      destroyAll();
    },
    restore() {
      down = false;
    },
    close() {
      down = true;
      destroyAll();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
