/**
 * The discovery store: owns the `gw_discovery` string zone (nginx/discovery-http.conf), and the
 * ngx.fetch fan-out that fills it. ngx.fetch needs literal IP:port servers, or a `resolver` for
 * host names. It also keeps two small texts that are not listings (gw_health is a number zone and
 * cannot hold text); each has a prefix of its own so no key can collide. Keys:
 *   l\n<upstream>             the upstream's last /v1/models listing (JSON, core/discovery.ts)
 *   list                      the assembled, unfiltered OpenAI list body, ready to send
 *   list_at                   ms of the oldest upstream attempt behind `list` (decimal text)
 *   e\n<upstream>\n<server>   the server's last health-probe error, '' after a passing probe;
 *                             written by handlers/refresh.ts, read by ngx/health.ts healthSnapshot
 *   w\n<name>                 "warned once" flags (`add` so one worker logs), e.g.
 *                             w\nmetrics_full from ngx/metricsRecorder.ts
 */
import { assembleModels, Assembled, decodeListing, Listing, listBody, nextListing, parseBackendModels, ServerAnswer } from '../core/discovery';
import { RouteTable, upstreamBearer } from '../core/routes';

const ZONE = 'gw_discovery';
const LIST = 'list';
const LIST_AT = 'list_at';

export function discoveryDict(): NgxSharedDict<string> | undefined {
  return ngx.shared[ZONE] as NgxSharedDict<string> | undefined;
}

function listingKey(upstream: string): string {
  return 'l\n' + upstream;
}

export function readListing(d: NgxSharedDict<string>, upstream: string): Listing | null {
  return decodeListing(d.get(listingKey(upstream)));
}

export function readListings(d: NgxSharedDict<string>, t: RouteTable): { [upstream: string]: Listing | null } {
  const out: { [upstream: string]: Listing | null } = Object.create(null);
  const ups = Object.keys(t.upstreams);
  for (let i = 0; i < ups.length; i++) out[ups[i]] = readListing(d, ups[i]);
  return out;
}

function probeErrorKey(upstream: string, server: string): string {
  return 'e\n' + upstream + '\n' + server;
}

/** Keeps the last health-probe error of `server` ('' when it passed), next to ngx/health.ts recordProbe. */
export function writeProbeError(upstream: string, server: string, text: string): void {
  const d = discoveryDict();
  if (d !== undefined) d.set(probeErrorKey(upstream, server), text);
}

/** The last health-probe error of `server`, or null when it passed or was never probed. */
export function readProbeError(upstream: string, server: string): string | null {
  const d = discoveryDict();
  const e = d !== undefined ? d.get(probeErrorKey(upstream, server)) : undefined;
  return e !== undefined && e !== '' ? e : null;
}

function errorText(e: unknown): string {
  const s = String(e && (e as Error).message ? (e as Error).message : e);
  return s.length > 200 ? s.slice(0, 200) : s;
}

/**
 * Headers for the gateway's own calls to an upstream: its API key (vLLM --api-key guards /v1/*)
 * when gateway.json names one with api_key_env, as routing sends it (the variable must be passed
 * to njs with nginx's `env` directive).
 */
export function backendHeaders(t: RouteTable, upstream: string): { [name: string]: string } {
  const bearer = upstreamBearer(t, upstream, process.env);
  return bearer !== '' ? { Authorization: bearer } : {};
}

function fetchServer(addr: string, headers: { [name: string]: string }): Promise<ServerAnswer> {
  return ngx.fetch('http://' + addr + '/v1/models', { method: 'GET', headers: headers })
    .then(function (res) {
      if (res.status !== 200) return { ok: false, error: addr + ': HTTP ' + res.status } as ServerAnswer;
      return res.json().then(function (body) {
        const p = parseBackendModels(body);
        return p.ok ? p : { ok: false, error: addr + ': ' + p.error } as ServerAnswer;
      });
    })
    .catch(function (e) {
      return { ok: false, error: addr + ': ' + errorText(e) } as ServerAnswer;
    });
}

/** Fetches every server of `upstream` in parallel and stores the upstream's new listing. */
export function refreshUpstream(d: NgxSharedDict<string>, t: RouteTable, upstream: string): Promise<Listing> {
  const servers = t.upstreams[upstream].servers;
  const ps: Promise<ServerAnswer>[] = [];
  const headers = backendHeaders(t, upstream);
  for (let i = 0; i < servers.length; i++) ps.push(fetchServer(servers[i], headers));
  return Promise.all(ps).then(function (answers) {
    const l = nextListing(readListing(d, upstream), answers, Date.now());
    d.set(listingKey(upstream), JSON.stringify(l));
    return l;
  });
}

/** Rebuilds the cached list from the stored listings; returns what it assembled. */
export function rebuildList(d: NgxSharedDict<string>, t: RouteTable): Assembled {
  const listings = readListings(d, t);
  const a = assembleModels(t, listings);
  let oldest = -1;
  const ups = Object.keys(listings);
  for (let i = 0; i < ups.length; i++) {
    const l = listings[ups[i]];
    const at = l !== null ? l.attempted_at : 0;
    if (oldest < 0 || at < oldest) oldest = at;
  }
  d.set(LIST, listBody(a.data));
  d.set(LIST_AT, String(oldest < 0 ? 0 : oldest));
  return a;
}

/** The cached list body and the time of its oldest upstream attempt (0 when none). */
export function cachedList(d: NgxSharedDict<string>): { body: string | undefined; at: number } {
  const at = d.get(LIST_AT);
  return { body: d.get(LIST), at: at !== undefined ? Number(at) : 0 };
}
