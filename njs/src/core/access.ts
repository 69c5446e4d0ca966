/**
 * Per-key model access. The auth stage writes the key's allowed models into $gw_key_models:
 *   ""  auth is off for this request, or the key may use every model (everything allowed; the
 *       auth stage leaves the variable at its default rather than write "*", ngx/policy.ts)
 *   "*" the same
 *   a JSON array of model names (canonical names or aliases)
 */
/** True when the spec allows every model: auth off ("") or a key for all models ("*"). */
export function allModelsAllowed(spec: string): boolean {
  return spec === '' || spec === '*';
}

export function modelAllowed(spec: string, canonical: string, requested: string): boolean {
  // allModelsAllowed, written out: every routed request asks.
  if (spec === '' || spec === '*') return true;
  let list: unknown;
  try {
    list = JSON.parse(spec);
  } catch (e) {
    return false;
  }
  if (!Array.isArray(list)) return false;
  return list.indexOf(canonical) >= 0 || list.indexOf(requested) >= 0;
}
