// IP literal checks without node:net (which loads the whole networking stack
// and slows every CLI start-up for two predicates).

const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

/** A dotted-quad IPv4 address, no leading zeros (as node:net's isIPv4). */
export function isIPv4(text: string): boolean {
  return IPV4.test(text);
}

/** An IPv6 address without brackets or zone (the WHATWG URL parser decides). */
export function isIPv6(text: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(':')) return false;
  return URL.canParse(`http://[${text}]/`);
}
