/**
 * Which IP addresses the default fetcher refuses to contact (issue 9, item 8): a
 * URL in a certificate, CRL or OCSP response is chosen by whoever made it, so a
 * request to it must not reach the verifier's own machine, its network, or a
 * cloud provider's metadata service (blind SSRF). The ranges are the IANA
 * special-purpose registries (RFC 6890, RFC 5735, RFC 4291, RFC 6598); IPv6 forms
 * that carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64 RFC 6052, 6to4
 * RFC 3056) are judged by the IPv4 address they carry. Pure: no I/O.
 */
import { isIPv4, isIPv6 } from 'node:net';

interface Range {
  bytes: number[];
  bits: number;
  kind: string;
}

const V4: Range[] = [
  { bytes: [0, 0, 0, 0], bits: 8, kind: 'an unspecified ("this network") address' },
  { bytes: [10, 0, 0, 0], bits: 8, kind: 'a private address' },
  { bytes: [100, 64, 0, 0], bits: 10, kind: 'a shared (carrier-grade NAT) address' },
  { bytes: [127, 0, 0, 0], bits: 8, kind: 'a loopback address' },
  { bytes: [169, 254, 0, 0], bits: 16, kind: 'a link-local address (cloud metadata services live at 169.254.169.254)' },
  { bytes: [172, 16, 0, 0], bits: 12, kind: 'a private address' },
  { bytes: [192, 0, 0, 0], bits: 24, kind: 'an IETF protocol address' },
  { bytes: [192, 168, 0, 0], bits: 16, kind: 'a private address' },
  { bytes: [198, 18, 0, 0], bits: 15, kind: 'a benchmarking address' },
  { bytes: [224, 0, 0, 0], bits: 4, kind: 'a multicast address' },
  { bytes: [240, 0, 0, 0], bits: 4, kind: 'a reserved or broadcast address' },
];

const V6: Range[] = [
  { bytes: [0xfc], bits: 7, kind: 'a unique local (private) IPv6 address' },
  { bytes: [0xfe, 0x80], bits: 10, kind: 'a link-local IPv6 address' },
  { bytes: [0xfe, 0xc0], bits: 10, kind: 'a site-local IPv6 address' },
  { bytes: [0xff], bits: 8, kind: 'a multicast IPv6 address' },
  { bytes: [0x00, 0x64, 0xff, 0x9b, 0x00, 0x01], bits: 48, kind: 'a local-use NAT64 address' },
  { bytes: [0x01, 0x00, 0, 0, 0, 0, 0, 0], bits: 64, kind: 'a discard-only IPv6 address' },
];

function inRange(addr: Uint8Array, r: Range): boolean {
  for (let bit = 0; bit < r.bits; bit += 8) {
    const left = Math.min(8, r.bits - bit);
    const mask = (0xff << (8 - left)) & 0xff;
    if (((addr[bit >> 3] ?? 0) & mask) !== ((r.bytes[bit >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

/** The 16 bytes of an IPv6 address (zone index ignored); undefined when it is not one. */
export function ipv6Bytes(address: string): Uint8Array | undefined {
  const text = address.split('%')[0]!;
  if (!isIPv6(text)) return undefined;
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

function classifyV4(b: Uint8Array): string | undefined {
  return V4.find((r) => inRange(b, r))?.kind;
}

/** The IPv4 address an IPv6 address stands for, when it carries one. */
function embeddedIpv4(b: Uint8Array): Uint8Array | undefined {
  const zeros = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated but still routed by some stacks).
  if (zeros(0, 10) && ((b[10] === 0xff && b[11] === 0xff) || (b[10] === 0 && b[11] === 0))) return b.subarray(12);
  // 64:ff9b::a.b.c.d, the well-known NAT64 prefix (RFC 6052).
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return b.subarray(12);
  // 2002:AABB:CCDD::/48, 6to4 (RFC 3056).
  if (b[0] === 0x20 && b[1] === 0x02) return b.subarray(2, 6);
  return undefined;
}

/**
 * What kind of internal address `address` is ("a loopback address", ...), or
 * undefined for an ordinary public address. Anything that is not an IP address
 * is refused too (a resolver must only ever hand back addresses).
 */
export function classifyInternalAddress(address: string): string | undefined {
  if (isIPv4(address)) return classifyV4(Uint8Array.from(address.split('.').map(Number)));
  const b = ipv6Bytes(address);
  if (!b) return 'not an IP address';
  if (b.subarray(0, 15).every((x) => x === 0)) return b[15] === 1 ? 'a loopback address' : 'an unspecified address';
  const v4 = embeddedIpv4(b);
  if (v4) {
    const kind = classifyV4(v4);
    return kind ? `${kind} (as IPv6)` : undefined;
  }
  return V6.find((r) => inRange(b, r))?.kind;
}
