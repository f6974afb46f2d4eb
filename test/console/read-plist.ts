/**
 * Reads an XML property list with python3's plistlib (a reader that is not ours),
 * as JSON: data values become { data: base64 }.
 */
import { execFileSync } from 'node:child_process';

export interface Profile {
  [key: string]: unknown;
  PayloadContent: Array<Record<string, unknown>>;
}

export function readPlist(file: string): Profile {
  return JSON.parse(execFileSync('python3', ['-c', `
import plistlib, sys, json, base64
with open(sys.argv[1], 'rb') as f:
    p = plistlib.load(f, fmt=plistlib.FMT_XML)
def j(v):
    if isinstance(v, bytes): return {'data': base64.b64encode(v).decode()}
    if isinstance(v, dict): return {k: j(x) for k, x in v.items()}
    if isinstance(v, list): return [j(x) for x in v]
    return v
print(json.dumps(j(p)))
`, file], { encoding: 'utf8' })) as Profile;
}
