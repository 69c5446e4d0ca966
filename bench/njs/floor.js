/**
 * The njs floor (bench/instructions.ts): handlers that do nothing, wired into nginx in the gateway's
 * shape, so the instructions stage can tell what njs's request model costs on its own from what the
 * gateway's code costs. `floor-2vm` is the gateway's shape: a js_set in the rewrite phase, js_content
 * that reads the body and hands the request to a named location with r.internalRedirect (njs < 0.9.9
 * has no js_access, and only a content handler can read the body), where a js_body_filter and a
 * log-phase js_set run in a second VM (nginx clears every module's context on an internal redirect).
 * `floor-1vm` is the same hooks without js_content: one VM, no body read by njs. `floor-access`
 * (njs >= 0.9.9) reads the body in js_access instead, then proxies from the same location: the
 * gateway's needs in one VM, which is what a js_access gateway could save at best.
 * Plain JavaScript that every engine runs, imported by nginx as it is (no bundling).
 */
function auth(_r) {
  return 'ok';
}

function route(r) {
  if (r.requestText === undefined) {
    r.return(500);
    return;
  }
  r.internalRedirect('@floor_upstream');
}

async function access(r) {
  if ((await r.readRequestText()) === undefined) r.return(500);
}

function filter(r, data, flags) {
  r.sendBuffer(data, flags);
}

function end(_r) {
  return '';
}

export default { auth: auth, route: route, access: access, filter: filter, end: end };
