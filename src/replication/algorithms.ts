// The SSH algorithms both sides offer, explicitly (ssh2's defaults let an
// unauthenticated client pick an 8192-bit Diffie-Hellman group, ~40 ms of
// CPU per handshake, and plain zlib, inflated before authentication on the
// event loop that also answers Docker). Modern only: no SHA-1 (ssh-rsa,
// hmac-sha1), no DSA, no finite-field DH at all (the elliptic curves are
// cheaper and as strong), and compression only after authentication.
import type ssh2 from 'ssh2';

export const KEX: readonly string[] = Object.freeze([
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
]);

// AES-GCM first: with AES-NI it is the fastest here (docs/benchmarks.md);
// chacha20-poly1305 next, for CPUs without it.
export const CIPHERS: readonly string[] = Object.freeze([
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'chacha20-poly1305@openssh.com',
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
]);

export const MACS: readonly string[] = Object.freeze(['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512']);

/** Host key algorithms, ed25519 first (what a new peer is asked for first). */
export const HOST_KEY_ALGORITHMS: readonly string[] = Object.freeze([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
]);

/** `zlib@openssh.com` starts only once the client has authenticated; plain `zlib` is never offered. */
const DELAYED_ZLIB = 'zlib@openssh.com';

/** The host key algorithms that can show a key of `keyType` (an RSA key signs with SHA-2 only). */
export function algorithmsForKeyType(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256'];
  return HOST_KEY_ALGORITHMS.includes(keyType) ? [keyType] : [];
}

/** What the embedded server offers. */
export function serverAlgorithms(): ssh2.Algorithms {
  return {
    kex: [...KEX],
    cipher: [...CIPHERS],
    hmac: [...MACS],
    serverHostKey: [...HOST_KEY_ALGORITHMS],
    compress: ['none', DELAYED_ZLIB],
  } as ssh2.Algorithms;
}

/**
 * What the client offers. `hostKeyTypes`: the key types recorded for this
 * peer in known_hosts (then only algorithms showing one of them are asked
 * for, as OpenSSH orders HostKeyAlgorithms for a known host); none: a first
 * contact, every algorithm, ed25519 first.
 */
export function clientAlgorithms(options: { compress?: boolean; hostKeyTypes?: readonly string[] } = {}): ssh2.Algorithms {
  const recorded = (options.hostKeyTypes ?? []).flatMap(algorithmsForKeyType);
  const hostKeys = recorded.length > 0 ? HOST_KEY_ALGORITHMS.filter((a) => recorded.includes(a)) : [...HOST_KEY_ALGORITHMS];
  return {
    kex: [...KEX],
    cipher: [...CIPHERS],
    hmac: [...MACS],
    serverHostKey: hostKeys,
    compress: options.compress ? [DELAYED_ZLIB, 'none'] : ['none'],
  } as ssh2.Algorithms;
}
