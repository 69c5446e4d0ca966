// parse-prometheus-text-format 1.1.1 ships no types. It returns prom2json-shaped families and
// throws InvalidLineError on a line it cannot read.
declare module 'parse-prometheus-text-format' {
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
