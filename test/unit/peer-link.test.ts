// The peer link beyond the Transport contract: the bytes each end counts, a caller of protocol v2
// (HTTP) told to upgrade, the client end of the handshake (a node that does not prove itself is
// refused; a closed transport sends nothing), and the faults LIKES_FAULTS injects.
import { once } from "node:events";
import net, { type AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { binaryCodec } from "../../src/replication/codec.js";
import { Faults, parseFaultRequest } from "../../src/replication/faults.js";
import { FaultError, LinkTransport, PeerRequestError } from "../../src/link/client.js";
import { FrameReader, plainFrame } from "../../src/link/frames.js";
import {
  MAX_HANDSHAKE_FRAME,
  decodeGreeting,
  encodeAnswer,
  freshNonce,
  looksLikeHttp,
  proofOf,
} from "../../src/link/handshake.js";
import { MAX_REQUESTS_IN_HANDLING } from "../../src/link/server.js";
import type { PeerRequest } from "../../src/replication/protocol.js";
import { noMetrics, silentLogger } from "../../src/telemetry/types.js";
import { RawLink } from "../support/peer.js";
import { writeRead } from "../support/tcp-queues.js";
import { waitFor } from "../support/wait.js";
import { SECRET, deltasReply, entry, sender, startPeerB } from "./transport-fixtures.js";

describe("peer link: bytes", () => {
  it("counts whole frames: what one end counts out, the other counts in, for lengths of 1–3 bytes", async () => {
    const counted = () => {
      const bytes = { in: 0, out: 0 };
      return {
        bytes,
        metrics: {
          ...noMetrics,
          peerBytes: (direction: "in" | "out", n: number) => (bytes[direction] += n),
        },
      };
    };
    const serverSide = counted();
    const clientSide = counted();
    const { server, peer } = await startPeerB({ metrics: serverSide.metrics });
    const transport = new LinkTransport(SECRET, "a", binaryCodec, clientSide.metrics);
    try {
      // Frames of about 100 B, 3 KB and 60 KB: a length of one, two and three bytes.
      for (const count of [1, 100, 2000]) {
        const entries = Array.from({ length: count }, (_, i) => ({ ...entry, seq: i + 1 }));
        await transport.send(peer, { kind: "deltas", ...sender, entries });
      }
      expect(clientSide.bytes.out).toBeGreaterThan(60_000);
      expect(serverSide.bytes.in).toBe(clientSide.bytes.out);
      expect(clientSide.bytes.in).toBe(serverSide.bytes.out);
    } finally {
      transport.close();
      await server.close();
    }
  });
});

describe("peer link: the serving end's bounds", () => {
  it("handles at most MAX_REQUESTS_IN_HANDLING at once, even of requests read in one go", async () => {
    const pending: (() => void)[] = [];
    const { server, port } = await startPeerB({
      // Each request stays in handling until the test lets it go.
      handle: () =>
        new Promise((resolve) => {
          pending.push(() =>
            resolve({ kind: "sync-reply", ...sender, entries: [], diff: new Map(), more: false }),
          );
        }),
    });
    const link = await RawLink.open(port, { secret: SECRET });
    try {
      // Four times the bound of small requests in one socket write: read in one go.
      const total = 4 * MAX_REQUESTS_IN_HANDLING;
      const frames = Array.from(
        { length: total },
        () => link.frame({ kind: "sync", ...sender, vv: new Map() }).bytes,
      );
      link.write(Buffer.concat(frames));
      await waitFor(
        "the first requests in handling",
        () => pending.length >= MAX_REQUESTS_IN_HANDLING,
      );
      // What the node reads next waits while those are handled.
      await new Promise((resolve) => setImmediate(resolve));
      expect(pending).toHaveLength(MAX_REQUESTS_IN_HANDLING);
      // Answered one at a time, the others come in their turn, never more than the bound in
      // handling, and every one is handled.
      for (let answered = 0; answered < total; answered++) {
        await waitFor("a request to answer", () => pending.length > answered);
        expect(pending.length - answered).toBeLessThanOrEqual(MAX_REQUESTS_IN_HANDLING);
        pending[answered]?.();
      }
      expect(pending).toHaveLength(total);
    } finally {
      link.close();
      await server.close();
    }
  });
});

describe("peer link: a peer that leaves the membership", () => {
  it("has its link closed when forgotten; a later send opens another", async () => {
    const { server, peer } = await startPeerB();
    const downs: string[] = [];
    const transport = new LinkTransport(SECRET, "a", binaryCodec, noMetrics, {
      down: (address, error) => downs.push(`${address}: ${error.message}`),
      clockSkew: () => {},
    });
    try {
      const push = () => transport.send(peer, { kind: "deltas", ...sender, entries: [entry] });
      await push();
      transport.forget(peer);
      expect(downs).toEqual([`${peer}: ${peer} left the membership`]);
      await push();
      expect(downs).toHaveLength(1);
    } finally {
      transport.close();
      await server.close();
    }
  });
});

describe("peer link: a caller of protocol v2 (HTTP)", () => {
  it("is told from a greeting by its first 8 bytes at most, and waits while they are too few", () => {
    for (const start of ["POST ", "GET ", "HEAD ", "PUT ", "OPTIONS ", "DELETE ", "PATCH "]) {
      for (let n = 1; n < start.length; n++)
        expect(looksLikeHttp(Buffer.from(start.slice(0, n))), start.slice(0, n)).toBeUndefined();
      expect(looksLikeHttp(Buffer.from(`${start}/peer/v2/deltas HTTP/1.1`))).toBe(true);
    }
    // A greeting starts with its length: a byte that may read as "P", but "LIKES" follows.
    expect(looksLikeHttp(Buffer.from("PLIKES"))).toBe(false);
    expect(looksLikeHttp(Buffer.from("GET/ HTTP/1.1"))).toBe(false);
    expect(looksLikeHttp(Buffer.of(0x20))).toBe(false);
  });

  it("is told to upgrade however TCP cuts the start of its request", async () => {
    const { server, port } = await startPeerB({
      handle: () => Promise.reject(new Error("a v2 caller is never handled")),
    });
    const request = "POST /peer/v2/deltas HTTP/1.1\r\nhost: b\r\ncontent-length: 0\r\n\r\n";
    try {
      for (const cut of [1, 2, 4, 5, 7]) {
        const socket = net.connect({ host: "127.0.0.1", port });
        socket.setNoDelay(true);
        await once(socket, "connect");
        let answer = "";
        socket.on("data", (chunk: Buffer) => (answer += chunk.toString("latin1")));
        const ended = once(socket, "end");
        // The rest is written once the node has read the start alone (a greeting would wait
        // for its length, and time out in 5 s).
        await writeRead(socket, request.slice(0, cut));
        socket.write(request.slice(cut));
        await ended;
        socket.destroy();
        expect(answer, `cut after ${cut} bytes`).toMatch(/^HTTP\/1\.1 410 Gone\r\n/);
      }
    } finally {
      await server.close();
    }
  });
});

describe("peer link: the client end of the handshake", () => {
  // A server that answers the hello with a proof that does not check under the caller's secret,
  // and records every byte sent to it after the hello.
  const wrongProofs: Record<string, (clientNonce: Buffer, serverNonce: Buffer) => Buffer> = {
    "a proof under another secret": (c, s) =>
      proofOf("another-cluster-secret-0000", "server", c, s),
    "the client's proof (the right secret, the wrong role)": (c, s) =>
      proofOf(SECRET, "client", c, s),
  };
  for (const [name, wrongProof] of Object.entries(wrongProofs)) {
    it(`refuses a node that answers with ${name}, and sends it nothing more`, async () => {
      let afterHello = 0;
      let connectionClosed!: Promise<void>;
      const server = net.createServer((socket) => {
        connectionClosed = new Promise((resolve) => socket.once("close", () => resolve()));
        socket.on("error", () => socket.destroy());
        const reader = new FrameReader(MAX_HANDSHAKE_FRAME);
        let hello: Buffer | undefined;
        socket.on("data", (chunk: Buffer) => {
          if (hello) {
            afterHello += chunk.length;
            return;
          }
          reader.push(chunk);
          const body = reader.next();
          if (!body) return;
          hello = Buffer.from(decodeGreeting(body, 0).nonce);
          const serverNonce = freshNonce();
          socket.write(
            plainFrame(encodeAnswer(serverNonce, wrongProof(hello, serverNonce), "imposter")),
          );
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const peer = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const skews: number[] = [];
      const downs: Error[] = [];
      const transport = new LinkTransport(SECRET, "a", binaryCodec, noMetrics, {
        down: (_, error) => downs.push(error),
        clockSkew: (_, skewMs) => skews.push(skewMs),
      });
      try {
        await expect(
          transport.send(peer, { kind: "sync", ...sender, vv: new Map() }),
        ).rejects.toMatchObject({
          name: "HandshakeError",
          reason: "wrong secret",
          message: expect.stringMatching(
            /does not hold this cluster's secret \(LIKES_CLUSTER_SECRET/,
          ),
        });
        await connectionClosed;
        // Neither its proof nor a request went to a node that did not prove itself.
        expect(afterHello).toBe(0);
        // An unproven answer's clock is not believed either.
        expect(skews).toEqual([]);
        expect(downs).toHaveLength(1);
      } finally {
        transport.close();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  }

  it("once closed, fails every send at once and opens no connection", async () => {
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const peer = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const transport = new LinkTransport(SECRET, "a", binaryCodec);
    try {
      transport.close();
      await expect(
        transport.send(peer, { kind: "sync", ...sender, vv: new Map() }),
      ).rejects.toMatchObject({ name: PeerRequestError.name, message: "this node is stopping" });
      expect(connections).toBe(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("injected faults on the peer link (LIKES_FAULTS)", () => {
  const logger = silentLogger;
  const clock = { now: () => Date.now(), setTimeout: () => ({ cancel: () => {} }) };

  async function link(random = () => 0.5) {
    const faultsA = new Faults(clock, random, logger);
    const faultsB = new Faults(clock, random, logger);
    const seen: PeerRequest[] = [];
    const { server, port } = await startPeerB({
      handle: (request) => {
        seen.push(request);
        return Promise.resolve(deltasReply());
      },
      refusesFrom: (node) => faultsB.refusesFrom(node),
    });
    const transport = new LinkTransport(
      SECRET,
      "a",
      binaryCodec,
      noMetrics,
      undefined,
      undefined,
      faultsA,
    );
    const peer = `127.0.0.1:${port}`;
    const push = () => transport.send(peer, { kind: "deltas", ...sender, entries: [entry] });
    const set = (faults: Faults, name: string, body: unknown) =>
      faults.set(parseFaultRequest(name, body));
    return {
      faultsA,
      faultsB,
      seen,
      push,
      set,
      close: async () => {
        transport.close();
        await server.close();
      },
    };
  }

  it("a cut out fails sends at once, by name once the peer answered, and sends nothing", async () => {
    const l = await link();
    try {
      await l.push(); // the handshake tells the link the peer's name
      l.set(l.faultsA, "b", { cut: "out" });
      // At once: settled before the event loop's next turn, no timer or socket involved.
      const outcome = await Promise.race([
        l.push().then(
          () => "sent",
          (error: unknown) => error,
        ),
        new Promise((resolve) => setImmediate(() => resolve("not yet"))),
      ]);
      expect(outcome).toBeInstanceOf(FaultError);
      expect(l.seen).toHaveLength(1);
      l.faultsA.clear();
      await l.push();
      expect(l.seen).toHaveLength(2);
    } finally {
      await l.close();
    }
  });

  it("a cut in refuses the peer's link, open or new, until cleared", async () => {
    const l = await link();
    try {
      await l.push();
      l.set(l.faultsB, "a", { cut: "in" });
      await expect(l.push()).rejects.toThrow(PeerRequestError); // the open link closes
      await expect(l.push()).rejects.toThrow(PeerRequestError); // a new one is refused
      expect(l.seen).toHaveLength(1);
      l.faultsB.clear();
      await l.push();
      expect(l.seen).toHaveLength(2);
    } finally {
      await l.close();
    }
  });

  it("a drop fails the send late, without sending; a delay sends late", async () => {
    const l = await link();
    try {
      l.set(l.faultsA, "*", { drop: 1 });
      let started = Date.now();
      await expect(l.push()).rejects.toThrow(/dropped by a fault/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(45);
      expect(l.seen).toEqual([]);
      l.faultsA.clear();
      l.set(l.faultsA, "*", { delay: { ms: 120 } });
      started = Date.now();
      await l.push();
      expect(Date.now() - started).toBeGreaterThanOrEqual(115);
      expect(l.seen).toHaveLength(1);
    } finally {
      await l.close();
    }
  });
});
