// Open-loop load in its own process, so that the probe's timings do not queue behind it:
// node dist-bench/bench/load.js <rate> <tag> <port,port,...>  (stops on SIGTERM, prints counts)
import http from "node:http";

const [rateText, tag, portsText] = process.argv.slice(2);
const rate = Number(rateText);
const ports = (portsText ?? "").split(",").map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
let posted = 0;
let errors = 0;
let n = 0;
let owed = 0;
const TICK_MS = 10;

function post(port: number, body: string): void {
  const req = http.request(
    {
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/like",
      agent,
      headers: { "content-type": "application/json" },
    },
    (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 201 ? posted++ : errors++));
    },
  );
  req.on("error", () => errors++);
  req.end(body);
}

const timer = setInterval(() => {
  owed += (rate * TICK_MS) / 1000;
  for (; owed >= 1; owed--, n++)
    post(
      ports[n % ports.length] as number,
      JSON.stringify({ post: `load-${n % 500}`, user: `${tag}-${n}` }),
    );
}, TICK_MS);

process.on("SIGTERM", () => {
  clearInterval(timer);
  // Answers still in flight are counted for a moment before reporting.
  setTimeout(() => {
    process.stdout.write(JSON.stringify({ posted, errors }) + "\n");
    process.exit(0);
  }, 500);
});
