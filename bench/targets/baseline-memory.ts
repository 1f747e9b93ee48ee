// Baseline M: express 5, a JSON body, likes in a Map<post, Set<user>>, nothing else.
import express from "express";

const likes = new Map<string, Set<string>>();
const app = express();
app.disable("x-powered-by");
app.set("etag", false);
app.post("/like", express.json({ limit: "16kb" }), (req, res) => {
  const { post, user } = req.body as { post?: unknown; user?: unknown };
  if (typeof post !== "string" || typeof user !== "string") {
    res
      .status(400)
      .json({ error: { code: "invalid_body", message: "post and user must be strings" } });
    return;
  }
  let users = likes.get(post);
  if (!users) likes.set(post, (users = new Set()));
  const isNew = !users.has(user);
  users.add(user);
  res.status(isNew ? 201 : 200).json({ post, user, new: isNew, node: "baseline-m" });
});
app.get("/likes", (req, res) => {
  const post = typeof req.query.post === "string" ? req.query.post : "";
  res.json({ post, likes: likes.get(post)?.size ?? 0 });
});
app.listen(Number(process.env.PORT), "127.0.0.1");
