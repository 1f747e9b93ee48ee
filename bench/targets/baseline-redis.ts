// Baseline R: express 5 + SADD/SCARD on a local Redis, what users pick instead of likes.
import express from "express";
import { Redis } from "ioredis";

const redis = new Redis({ host: "127.0.0.1", port: Number(process.env.REDIS_PORT) });
const app = express();
app.disable("x-powered-by");
app.set("etag", false);
app.post("/like", express.json({ limit: "16kb" }), async (req, res) => {
  const { post, user } = req.body as { post?: unknown; user?: unknown };
  if (typeof post !== "string" || typeof user !== "string") {
    res
      .status(400)
      .json({ error: { code: "invalid_body", message: "post and user must be strings" } });
    return;
  }
  const added = await redis.sadd(`likes:${post}`, user);
  res.status(added === 1 ? 201 : 200).json({ post, user, new: added === 1, node: "baseline-r" });
});
app.get("/likes", async (req, res) => {
  const post = typeof req.query.post === "string" ? req.query.post : "";
  res.json({ post, likes: await redis.scard(`likes:${post}`) });
});
app.listen(Number(process.env.PORT), "127.0.0.1");
