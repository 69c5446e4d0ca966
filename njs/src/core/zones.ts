/**
 * Which nginx include declares each shared-dict zone the gateway uses, for the one error a missing
 * zone gets: the name and the include to add. The store module that owns a zone (ngx/keyStore.ts,
 * ngx/slots.ts, ngx/health.ts, ...) keeps its name; this only maps names to includes. A switch, not a
 * table: njs 0.8 would build a table in every request's VM, a switch costs nothing until it runs.
 * test/unit/zones.test.ts keeps it equal to the js_shared_dict_zone lines in nginx/.
 */
export function zoneInclude(name: string): string {
  switch (name) {
    case 'gw_keys':
    case 'gw_keys_lock':
    case 'gw_rate':
    case 'gw_queue':
    case 'gw_leases':
      return 'nginx/gateway-http.conf';
    case 'gw_discovery':
    case 'gw_health':
    case 'gw_metrics':
      return 'nginx/discovery-http.conf';
    case 'gw_usage':
      return 'nginx/logging-http.conf';
    case 'gw_jwks':
    case 'gw_jwt_verified':
      return 'nginx/jwt-http.conf';
    default:
      return '';
  }
}

/** The error for a zone nginx.conf does not declare, naming the fix. */
export function missingZone(name: string): Error {
  const inc = zoneInclude(name);
  return new Error('js_shared_dict_zone ' + name + ' is missing: include ' + (inc !== '' ? inc : 'the include that declares it') + ' in http{}');
}
