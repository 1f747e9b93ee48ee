// A peer link opened by hand, as a peer that holds the secret (or a given one) would open it:
// for tests that play a buggy, hostile or skewed peer against a real node's peer port. It speaks
// the handshake of src/link/handshake.ts and seals frames as src/link/frames.ts does, and can
// also send bytes that no honest peer would.
import net from "node:net";
import { openEnvelope, requestEnvelope, type Envelope } from "../../src/link/envelope.js";
import {
  Direction,
  FrameReader,
  FrameSealer,
  plainFrame,
  MAX_FRAME_BYTES,
} from "../../src/link/frames.js";
import {
  MAX_HANDSHAKE_FRAME,
  PROOF_BYTES,
  decodeGreeting,
  encodeHello,
  freshNonce,
  linkKey,
  proofOf,
  proves,
} from "../../src/link/handshake.js";
import { binaryCodec } from "../../src/replication/codec.js";
import { ReceivedStrings, SentStrings } from "../../src/replication/link-strings.js";
import type { PeerMessage, PeerRequest } from "../../src/replication/protocol.js";
import { TEST_SECRET } from "./cluster.js";
import { GiveUp, waitFor } from "./wait.js";

export interface RawLinkOptions {
  readonly secret?: string;
  readonly node?: string;
  /** The time the hello claims (ms): a skewed clock. */
  readonly now?: number;
  /**
   * Whether to check the node's proof (default true): a caller given the wrong secret cannot,
   * and sets false to go on and send the node its (wrong) proof.
   */
  readonly checkNode?: boolean;
  /**
   * Stop before sending this end's proof: it is kept in `withheldProof` (a plain frame), for a
   * test that sends something else first.
   */
  readonly withholdProof?: boolean;
}

export class RawLink {
  private readonly reader = Object.assign(new FrameReader(MAX_FRAME_BYTES), { sealed: true });
  private readonly envelopes: Envelope[] = [];
  /** The names each direction has carried, as a node's end of the link keeps them. */
  private readonly sentNames = new SentStrings();
  private readonly replyNames = new ReceivedStrings();
  /** Replies, decoded in the order they came (as names must be), by request id. */
  private readonly replies = new Map<number, PeerMessage | Error>();
  private nextId = 1;
  closed = false;
  /** What the node sent that this end could not open (it then closes the link). */
  unreadable: Error | undefined;

  private constructor(
    private readonly socket: net.Socket,
    /** Seals as the client end of the link. */
    readonly sealer: FrameSealer,
    private readonly opener: FrameSealer,
    /** This end's proof, as a plain frame, when `withholdProof` kept it back. */
    readonly withheldProof: Buffer | undefined,
  ) {
    socket.on("data", (chunk: Buffer) => {
      try {
        this.reader.push(chunk);
        for (let body = this.reader.next(); body; body = this.reader.next()) {
          const envelope = openEnvelope(this.opener.open(body));
          this.envelopes.push(envelope);
          if (envelope.type === "reply")
            this.replies.set(envelope.id, this.decode(envelope.message));
        }
      } catch (error) {
        // Thrown from a socket event, it would fail the test run rather than the test.
        this.unreadable = error instanceof Error ? error : new Error(String(error));
        socket.destroy();
      }
    });
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => (this.closed = true));
  }

  /**
   * Connects and completes the handshake; rejects when the node's proof does not check (unless
   * `checkNode` is false).
   */
  static async open(
    port: number | null | undefined,
    options: RawLinkOptions = {},
  ): Promise<RawLink> {
    const secret = options.secret ?? TEST_SECRET;
    const socket = net.connect({ host: "127.0.0.1", port: port ?? 0 });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const nonce = freshNonce();
    socket.write(plainFrame(encodeHello(nonce, options.node ?? "tester", options.now)));
    const reader = new FrameReader(MAX_HANDSHAKE_FRAME);
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        reader.push(chunk);
        const body = reader.next();
        if (!body) return;
        socket.off("data", onData);
        resolve(Buffer.from(body));
      };
      socket.on("data", onData);
      socket.once("close", () => reject(new Error("closed during the handshake")));
    });
    const { nonce: serverNonce, proof: nodeProof } = decodeGreeting(answer, PROOF_BYTES);
    if ((options.checkNode ?? true) && !proves(secret, "server", nonce, serverNonce, nodeProof)) {
      socket.destroy();
      throw new Error("the node's proof does not check: it does not hold the secret");
    }
    const proof = plainFrame(proofOf(secret, "client", nonce, serverNonce));
    if (!options.withholdProof) socket.write(proof);
    const key = linkKey(secret, nonce, serverNonce);
    return new RawLink(
      socket,
      new FrameSealer(key, Direction.toServer),
      new FrameSealer(key, Direction.toClient),
      options.withholdProof ? proof : undefined,
    );
  }

  /**
   * A message as this link carries it (names it sent before by their index), to be sent next:
   * messages must go out in the order they were encoded.
   */
  encode(message: PeerMessage): Buffer {
    const bytes = binaryCodec.encode(message, this.sentNames);
    this.sentNames.sent();
    return bytes;
  }

  /** The decoded reply to request `id` (its envelope answered). */
  reply(id: number): PeerMessage {
    const reply = this.replies.get(id);
    if (reply === undefined) throw new Error(`no reply to request ${id}`);
    if (reply instanceof Error) throw reply;
    return reply;
  }

  /** The sealed frame of a request, numbered in turn, and its id. */
  frame(request: PeerRequest | Buffer, traceparent?: string): { id: number; bytes: Buffer } {
    const message = Buffer.isBuffer(request) ? request : this.encode(request);
    const id = this.nextId++;
    return { id, bytes: this.sealer.seal(requestEnvelope(id, traceparent, message)) };
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends a request and waits for its answer (a reply or an error envelope). */
  async request(request: PeerRequest | Buffer, traceparent?: string): Promise<Envelope> {
    const { id, bytes } = this.frame(request, traceparent);
    this.write(bytes);
    return this.answer(id);
  }

  answer(id: number): Promise<Envelope> {
    return waitFor(`the answer to request ${id}`, () => {
      const answer = this.envelopes.find((e) => e.id === id);
      if (answer) return answer;
      if (this.unreadable) throw new GiveUp(this.unreadable.message);
      if (this.closed) throw new GiveUp("the node closed the link");
      return undefined;
    });
  }

  /** Waits until the node closes the link. */
  async closedByNode(): Promise<void> {
    await waitFor("the node to close the link", () => this.closed);
  }

  close(): void {
    this.socket.destroy();
  }

  private decode(message: Buffer): PeerMessage | Error {
    try {
      const kind = binaryCodec.kindOf(message);
      if (kind === undefined) throw new Error("a reply of no known kind");
      return binaryCodec.decode(message, kind, this.replyNames);
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }
}
