// Prints the nginx the gateway will run with (provisioning one if needed) and why others were rejected.
import { findNginx } from '../tools/findNginx';

const rt = findNginx();
console.log(JSON.stringify(rt, null, 2));
