/**
 * Makes an API key for GW_KEYS_FILE (keys managed by ops, in git or a secret store): prints the
 * secret once on stderr and the file entry (hash only) on stdout.
 *   npx tsx scripts/gw-key.ts --id ci-bot --models '*' --rpm 600 --burst 20 --tier normal >> entries.json
 * The file is {"keys": [entry, ...]}; the gateway re-reads it within 5 s of a change.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ID_RULE, validKeyId } from '../njs/src/core/keys';

const { values } = parseArgs({
  options: {
    id: { type: 'string' }, label: { type: 'string', default: '' }, models: { type: 'string', default: '*' },
    rpm: { type: 'string', default: '0' }, burst: { type: 'string', default: '0' }, tier: { type: 'string', default: 'normal' },
    'expires-in': { type: 'string' },
  },
});
if (!values.id) {
  console.error('usage: gw-key --id <id> [--label s] [--models "*"|a,b] [--rpm n] [--burst n] [--tier high|normal|low] [--expires-in seconds]');
  process.exit(2);
}
// The gateway skips an entry whose id breaks its rule: refuse it here, where it can be fixed.
if (!validKeyId(values.id)) {
  console.error(`--id ${JSON.stringify(values.id)}: a key id is ${ID_RULE}`);
  process.exit(2);
}
const secret = `sk-gw-${randomBytes(24).toString('base64url')}`;
const entry: Record<string, unknown> = {
  id: values.id, hash: `sha256:${createHash('sha256').update(secret).digest('hex')}`, label: values.label,
  models: values.models === '*' ? '*' : values.models.split(',').map((m) => m.trim()).filter(Boolean),
  rpm: Number(values.rpm), burst: Number(values.burst), tier: values.tier,
};
if (values['expires-in']) entry.expires_at = Math.floor(Date.now() / 1000) + Number(values['expires-in']);
console.error(`key (shown once, give it to the client): ${secret}`);
console.log(JSON.stringify(entry));
