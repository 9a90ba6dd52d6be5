// The SSH client side (ssh2 Client): one connection to a peer, checked
// against known_hosts (a new peer is recorded and logged, a changed key is
// refused naming the file and line), authenticated with this host's client
// key, and channels opened on the "buttervolume" subsystem for requests.
import type { Duplex } from 'node:stream';

import type ssh2 from 'ssh2';

import type { Logger } from '../log.js';
import { clientAlgorithms } from './algorithms.js';
import { checkHostKey, clientKey, recordedHostKeys, recordHostKey, SshKeyError, knownHostsName, type HostKeyVerdict } from './keys.js';
import type { Peer } from './peer.js';
import { answerError } from './peer-answers.js';
import { readLine, writeLine } from './frames.js';
import { loadSsh2 } from './ssh2-lazy.js';
import { BASE_PROTOCOL_VERSION, ReplicationError, SUBSYSTEM, type RequestBody } from './protocol.js';


export interface ConnectOptions {
  sshPath: string;
  logger: Pick<Logger, 'info' | 'warning' | 'debug'>;
  /** SSH compression (zlib@openssh.com). Default false. */
  compress?: boolean;
  /** Give up connecting after this many ms (default 20 s). */
  timeoutMs?: number;
  /** A peer that answers nothing, or stalls a stream, for this long is given up (REPLICATION_IDLE_TIMEOUT; default 60 s). */
  idleMs?: number;
  /** Refuse a peer whose host key known_hosts does not record, instead of recording it (first contact). Default false. */
  knownHostsOnly?: boolean;
}

/** The last answer of a request comes once the peer has finished its side (a receive syncs its data first): waited for longer. */
const FINAL_ANSWER_IDLE_FACTOR = 10;

/** A channel with the answer that opened it. */
export interface Opened {
  channel: ssh2.ClientChannel;
  answer: Record<string, unknown>;
}

/** An open connection to a peer. */
export class PeerConnection {
  private constructor(
    readonly peer: Peer,
    private readonly client: ssh2.Client,
    /** See {@link ConnectOptions.idleMs}. */
    readonly idleMs: number,
  ) {}

  /**
   * Connects and authenticates.
   * @throws ReplicationError `ERR_PEER_UNREACHABLE` (cannot connect: never "it has nothing"),
   *   `ERR_PEER_AUTH` (our key is not in its authorized_keys); SshKeyError `ERR_HOST_KEY_CHANGED`.
   */
  static async connect(peer: Peer, options: ConnectOptions): Promise<PeerConnection> {
    const [key, recorded] = await Promise.all([clientKey(options.sshPath), recordedHostKeys(options.sshPath, peer)]);
    const client = new (loadSsh2().Client)();
    let verdict: HostKeyVerdict | undefined;
    let verifyError: Error | undefined;
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        client.removeAllListeners('ready');
        client.end();
        reject(err);
      };
      client.once('ready', () => {
        client.removeListener('error', onError);
        client.on('error', (err) => options.logger.debug(`ssh ${peer.label}: ${err.message}`));
        resolve();
      });
      const onError = (err: Error & { level?: string; code?: string }) => {
        if (verdict?.kind === 'changed') {
          return fail(
            new SshKeyError(
              'ERR_HOST_KEY_CHANGED',
              `the host key of ${knownHostsName(peer)} is not the one recorded in ${verdict.file} line ${verdict.line}: refused (if the peer was reinstalled, delete that line)`,
            ),
          );
        }
        if (verifyError) return fail(verifyError);
        // Asked only for the key types recorded for it, the peer showed none of them.
        if (recorded.length > 0 && /no matching host key/.test(err.message)) {
          return fail(
            new SshKeyError(
              'ERR_HOST_KEY_CHANGED',
              `${knownHostsName(peer)} offers no host key of the type recorded in ${options.sshPath}/known_hosts line ${recorded[0]!.line} (${recorded.map((r) => r.type).join(', ')}): refused (if the peer was reinstalled, delete that line)`,
            ),
          );
        }
        if (err.level === 'client-authentication') {
          return fail(new ReplicationError('ERR_PEER_AUTH', `${peer.label}: refused our key (${key.path}.pub): add it to ${peer.label}'s authorized_keys (buttervolume ssh-key prints it)`));
        }
        const code = err.code ?? (err.level === 'client-timeout' ? 'ETIMEDOUT' : undefined);
        fail(new ReplicationError('ERR_PEER_UNREACHABLE', `cannot reach ${peer.label} (${peer.host} port ${peer.port}): ${code ? `${code}: ` : ''}${err.message}`, { cause: err }));
      };
      client.on('error', onError);
      client.connect({
        host: peer.host,
        port: peer.port,
        username: peer.user,
        privateKey: key.privateKey,
        readyTimeout: options.timeoutMs ?? 20_000,
        keepaliveInterval: 5000,
        keepaliveCountMax: 3,
        algorithms: clientAlgorithms({ compress: options.compress === true, hostKeyTypes: recorded.map((r) => r.type) }),
        hostVerifier: (hostKey: Buffer, verify: (ok: boolean) => void) => {
          checkHostKey(options.sshPath, peer, hostKey)
            .then(async (v) => {
              verdict = v;
              if (v.kind === 'new' && options.knownHostsOnly) {
                verifyError = new SshKeyError('ERR_HOST_KEY_UNKNOWN', `${options.sshPath}/known_hosts records no host key of ${knownHostsName(peer)}: not contacted`);
                return verify(false);
              }
              if (v.kind === 'new') {
                await recordHostKey(options.sshPath, peer, hostKey);
                options.logger.info(`recorded the host key of ${knownHostsName(peer)} in ${options.sshPath}/known_hosts (first contact)`);
              }
              verify(v.kind !== 'changed');
            })
            .catch((err: Error) => {
              verifyError = err;
              verify(false);
            });
        },
      });
      // No Nagle (see server.ts), from the handshake on: set on the socket connect() just made.
      client.setNoDelay(true);
    });
    return new PeerConnection(peer, client, options.idleMs ?? 60_000);
  }

  /**
   * Opens a request channel, sends `request` at protocol `version` (the
   * lowest that has what the caller needs: protocol.ts) and reads the first
   * answer line.
   * @throws ReplicationError with the peer's code when it refuses.
   */
  async open(request: RequestBody, version = BASE_PROTOCOL_VERSION): Promise<Opened> {
    const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) => {
      this.client.subsys(SUBSYSTEM, (err, ch) => (err ? reject(new ReplicationError('ERR_PEER_FAILED', `${this.peer.label}: cannot open a channel: ${err.message}`)) : resolve(ch)));
    });
    writeLine(channel, { v: version, ...request });
    const answer = (await readLine(channel, undefined, this.idleMs).catch((err: Error & { code?: string }) => {
      channel.destroy();
      throw new ReplicationError(err.code === 'ERR_PEER_TIMEOUT' ? err.code : 'ERR_PEER_FAILED', `${this.peer.label}: no answer to ${request.op}: ${err.message}`);
    })) as Record<string, unknown>;
    const refused = answerError(answer, this.peer.label);
    if (refused) {
      channel.destroy();
      throw refused;
    }
    return { channel, answer };
  }

  /**
   * Reads the next answer line of `channel` (after data), as an error when it
   * is one. Not bounded in time: it is read while the data goes (a refusal
   * mid-stream); bound the wait once the data is sent with {@link finalAnswer}.
   */
  async next(channel: Duplex, what: string): Promise<Record<string, unknown>> {
    const answer = (await readLine(channel).catch((err: Error & { code?: string }) => {
      throw new ReplicationError(err.code === 'ERR_PEER_TIMEOUT' ? err.code : 'ERR_PEER_FAILED', `${this.peer.label}: no answer after ${what}: ${err.message}`);
    })) as Record<string, unknown>;
    const refused = answerError(answer, this.peer.label);
    if (refused) throw refused;
    return answer;
  }

  /** `answer` (from {@link next}), given up (and the channel closed) if it does not come in a while once our data is sent. */
  async finalAnswer<T>(answer: Promise<T>, channel: Duplex, what: string): Promise<T> {
    const ms = this.idleMs * FINAL_ANSWER_IDLE_FACTOR;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        channel.destroy();
        reject(new ReplicationError('ERR_PEER_TIMEOUT', `${this.peer.label}: no answer within ${Math.round(ms / 1000)} s after ${what}`));
      }, ms);
    });
    try {
      return await Promise.race([answer, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.client.end();
  }
}

/** Runs `fn` on a connection to `peer`, closed afterwards whatever happens. */
export async function withPeer<T>(peer: Peer, options: ConnectOptions, fn: (conn: PeerConnection) => Promise<T>): Promise<T> {
  const conn = await PeerConnection.connect(peer, options);
  try {
    return await fn(conn);
  } finally {
    conn.close();
  }
}
