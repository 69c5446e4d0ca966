// dist/routes/gw-routes.js is generated from nginx/gateway.json and loaded by nginx from js_path;
// ngx/table.ts gives it its type.
declare module 'gw-routes.js' {
  const table: () => unknown;
  export default table;
}
