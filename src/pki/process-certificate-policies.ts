/**
 * Certificate policy processing of one path (RFC 5280 6.1.2 (a), (d)-(f), (i)-(j),
 * 6.1.3 (d)-(f), 6.1.4 (a)-(b), (h)-(j), 6.1.5 (a)-(b), (g)): the valid_policy_tree
 * with policyMappings, inhibitPolicyMapping, inhibitAnyPolicy (with skip
 * certificates) and requireExplicitPolicy from policyConstraints, and the
 * intersection with the user-initial-policy-set.
 *
 * The trust anchor is not part of the path (RFC 5280 6.1): its own policy
 * extensions are not processed, as OpenSSL does not process them either.
 *
 * The tree can grow exponentially with crafted mappings (CVE-2023-0464 in
 * OpenSSL): the number of nodes is bounded and a path beyond it is refused.
 */
import type { Certificate } from '../x509/certificate.ts';
import { OID } from '../asn1/oids.ts';
import { PKI_OID, readCertificatePolicies, readInhibitAnyPolicy, readPolicyConstraints, readPolicyMappings } from './read-certificate-extensions.ts';

const ANY = PKI_OID.anyPolicy;

/** The RFC 5280 6.1.1 inputs; the defaults are the S/MIME ones (any policy, nothing required or inhibited). */
export interface PolicyProcessingOptions {
  /** user-initial-policy-set; absent or empty means any-policy. */
  initialPolicySet?: string[];
  /** initial-explicit-policy: the path must be valid for at least one policy of the set. */
  requireExplicitPolicy?: boolean;
  /** initial-policy-mapping-inhibit. */
  inhibitPolicyMapping?: boolean;
  /** initial-any-policy-inhibit. */
  inhibitAnyPolicy?: boolean;
}

export interface PolicyProcessingResult {
  /** Set when the path fails policy processing: one plain sentence. */
  problem?: string;
  /** The authorities-constrained ∩ user-constrained policies (6.1.6); 'any' when the tree still holds anyPolicy at the leaf. Empty when the tree is NULL. */
  policies: string[] | 'any';
}

/** Nodes the tree may hold at once; a path needing more is refused. */
export const MAX_POLICY_NODES = 1000;

interface PolicyNode {
  policy: string;
  expected: Set<string>;
  parent: PolicyNode | undefined;
  children: PolicyNode[];
}

/** Processes `path` (leaf first, anchor last). */
export function processCertificatePolicies(path: Certificate[], o: PolicyProcessingOptions = {}): PolicyProcessingResult {
  // The certificates of the path proper: index 1 is the one the anchor issued, n the leaf.
  const certs = path.slice(0, -1).reverse();
  const n = certs.length;
  const userSet = o.initialPolicySet?.length ? new Set(o.initialPolicySet) : undefined;
  if (n === 0) return { policies: userSet ? [...userSet] : 'any' };

  let nodes = 1;
  const tooMany = (): PolicyProcessingResult => ({ problem: `The certificate policies of the path expand to more than ${MAX_POLICY_NODES} combinations; the path is refused.`, policies: [] });
  const root: PolicyNode = { policy: ANY, expected: new Set([ANY]), parent: undefined, children: [] };
  // levels[d]: the nodes at depth d; undefined tree = NULL.
  let levels: PolicyNode[][] | undefined = [[root]];
  let explicitPolicy = o.requireExplicitPolicy ? 0 : n + 1;
  let inhibitAny = o.inhibitAnyPolicy ? 0 : n + 1;
  let policyMapping = o.inhibitPolicyMapping ? 0 : n + 1;

  const addChild = (parent: PolicyNode, policy: string, expected: Set<string>, level: PolicyNode[]): boolean => {
    if (++nodes > MAX_POLICY_NODES) return false;
    const node: PolicyNode = { policy, expected, parent, children: [] };
    parent.children.push(node);
    level.push(node);
    return true;
  };

  for (let i = 1; i <= n; i++) {
    const c = certs[i - 1]!;
    const selfIssued = Buffer.compare(c.subject, c.issuer) === 0;
    const who = i === n ? 'the signer\'s certificate' : `the CA certificate "${c.subjectText || c.serialHex}"`;
    const policies = c.extensions.has(OID.certificatePolicies) ? readCertificatePolicies(c) : undefined;
    if (policies && new Set(policies).size !== policies.length) return { problem: `${capital(who)} lists a certificate policy twice (RFC 5280 4.2.1.4).`, policies: [] };

    // 6.1.3 (d): grow the tree by this certificate's policies; (e): none makes it NULL.
    if (levels && policies) {
      const above = levels[i - 1]!;
      const level: PolicyNode[] = [];
      for (const p of policies) {
        if (p === ANY) continue;
        let matched = false;
        for (const node of above) {
          if (node.expected.has(p)) {
            matched = true;
            if (!addChild(node, p, new Set([p]), level)) return tooMany();
          }
        }
        if (!matched) {
          const anyNode = above.find((x) => x.policy === ANY);
          if (anyNode && !addChild(anyNode, p, new Set([p]), level)) return tooMany();
        }
      }
      if (policies.includes(ANY) && (inhibitAny > 0 || (i < n && selfIssued))) {
        for (const node of above) {
          const present = new Set(node.children.map((x) => x.policy));
          for (const p of node.expected) {
            if (!present.has(p) && !addChild(node, p, new Set([p]), level)) return tooMany();
          }
        }
      }
      levels.push(level);
      levels = prune(levels, i);
    } else levels = undefined;

    // 6.1.3 (f).
    if (explicitPolicy <= 0 && !levels) return { problem: `An explicit certificate policy is required from ${who} on, and no policy is valid for the path down to it (RFC 5280 6.1.3 (f)).`, policies: [] };

    if (i === n) break;

    // 6.1.4 (a)-(b): policy mappings.
    const mappings = readPolicyMappings(c);
    if (mappings) {
      if (mappings.some(([from, to]) => from === ANY || to === ANY)) return { problem: `${capital(who)} maps a policy to or from anyPolicy, which RFC 5280 6.1.4 (a) forbids.`, policies: [] };
      if (levels) {
        const byIssuerPolicy = new Map<string, Set<string>>();
        for (const [from, to] of mappings) {
          const set = byIssuerPolicy.get(from) ?? new Set<string>();
          set.add(to);
          byIssuerPolicy.set(from, set);
        }
        const level = levels[i]!;
        for (const [from, targets] of byIssuerPolicy) {
          if (policyMapping > 0) {
            const hits = level.filter((x) => x.policy === from);
            for (const x of hits) x.expected = new Set(targets);
            if (hits.length === 0) {
              const anyNode = level.find((x) => x.policy === ANY);
              if (anyNode && !addChild(anyNode.parent!, from, new Set(targets), level)) return tooMany();
            }
          } else {
            for (const x of level.filter((y) => y.policy === from)) remove(x, level);
            levels = prune(levels, i);
            if (!levels) break;
          }
        }
      }
    }

    // 6.1.4 (h)-(j).
    if (!selfIssued) {
      if (explicitPolicy > 0) explicitPolicy--;
      if (policyMapping > 0) policyMapping--;
      if (inhibitAny > 0) inhibitAny--;
    }
    const pc = readPolicyConstraints(c);
    if (pc?.requireExplicitPolicy !== undefined) explicitPolicy = Math.min(explicitPolicy, pc.requireExplicitPolicy);
    if (pc?.inhibitPolicyMapping !== undefined) policyMapping = Math.min(policyMapping, pc.inhibitPolicyMapping);
    const ia = readInhibitAnyPolicy(c);
    if (ia !== undefined) inhibitAny = Math.min(inhibitAny, ia);
  }

  // 6.1.5 (a)-(b): the leaf's own constraints.
  const leaf = certs[n - 1]!;
  if (explicitPolicy > 0) explicitPolicy--;
  if (readPolicyConstraints(leaf)?.requireExplicitPolicy === 0) explicitPolicy = 0;

  // 6.1.5 (g): the intersection with the user-initial-policy-set.
  if (levels && userSet) {
    if (nodes + userSet.size > MAX_POLICY_NODES) return tooMany();
    levels = intersect(levels, n, userSet);
  }
  const policies: string[] | 'any' = !levels ? [] : levels[n]!.some((x) => x.policy === ANY) ? 'any' : [...new Set(levels[n]!.map((x) => x.policy))];
  if (explicitPolicy <= 0 && !levels) {
    const wanted = userSet ? ` acceptable here (${[...userSet].join(', ')})` : '';
    return { problem: `The path must be valid for an explicit certificate policy${wanted}, and no policy is valid for the whole path (RFC 5280 6.1.5).`, policies };
  }
  return { policies };
}

/** Detaches `node` from its parent and from `level`. */
function remove(node: PolicyNode, level: PolicyNode[]): void {
  const at = level.indexOf(node);
  if (at >= 0) level.splice(at, 1);
  if (node.parent) node.parent.children = node.parent.children.filter((x) => x !== node);
}

/** Removes childless nodes above `depth` (6.1.3 (d)(3)); undefined when the root goes. */
function prune(levels: PolicyNode[][], depth: number): PolicyNode[][] | undefined {
  for (let d = depth - 1; d >= 0; d--) {
    for (const node of [...levels[d]!]) if (node.children.length === 0) remove(node, levels[d]!);
  }
  return levels[0]!.length === 0 ? undefined : levels;
}

/** 6.1.5 (g)(iii): keeps the policies of the user-initial-policy-set. */
function intersect(levels: PolicyNode[][], n: number, userSet: Set<string>): PolicyNode[][] | undefined {
  // valid_policy_node_set: the nodes whose parent is an anyPolicy node.
  const validSet: Array<{ node: PolicyNode; depth: number }> = [];
  levels.forEach((level, d) => {
    for (const node of level) if (node.parent?.policy === ANY && node.policy !== ANY) validSet.push({ node, depth: d });
  });
  for (const { node, depth } of validSet) {
    if (!userSet.has(node.policy)) removeSubtree(node, levels, depth);
  }
  const leafLevel = levels[n]!;
  const anyLeaf = leafLevel.find((x) => x.policy === ANY);
  if (anyLeaf) {
    const present = new Set(validSet.map((x) => x.node.policy));
    for (const p of userSet) {
      if (present.has(p)) continue;
      const node: PolicyNode = { policy: p, expected: new Set([p]), parent: anyLeaf.parent, children: [] };
      anyLeaf.parent!.children.push(node);
      leafLevel.push(node);
    }
    remove(anyLeaf, leafLevel);
  }
  return prune(levels, n);
}

function removeSubtree(node: PolicyNode, levels: PolicyNode[][], depth: number): void {
  for (const child of [...node.children]) removeSubtree(child, levels, depth + 1);
  remove(node, levels[depth]!);
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
