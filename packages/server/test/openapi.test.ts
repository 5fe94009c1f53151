import { validate } from "@readme/openapi-parser";
import { Stepwise } from "@stepwise/core";
import { createTestEngine, type TestEngine } from "@stepwise/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_ROUTES } from "../src/api/catalogue.js";
import { createServer } from "../src/index.js";

// The OpenAPI document is generated from the routes' own schemas; these tests hold the list of
// routes it is built from to the app's real routes, both ways, and validate the document.

describe("GET /v1/openapi.json", () => {
  let engine: TestEngine;
  beforeAll(async () => {
    const stepwise = new Stepwise({ id: "docs" });
    stepwise.createFunction({ id: "noop" }, { event: "docs/noop" }, async () => null);
    engine = await createTestEngine({ clients: [stepwise] });
  });
  afterAll(() => engine.close());

  const server = () => createServer({ engine, auth: { mode: "local" } });

  it("is a valid OpenAPI 3.1 document with every route, its parameters and its answers", async () => {
    const response = await server().request("/v1/openapi.json");
    expect(response.status).toBe(200);
    const document = (await response.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }>; responses: Record<string, unknown>; requestBody?: unknown }>>;
    };
    expect(document.openapi).toBe("3.1.0");
    const result = await validate(structuredClone(document) as never);
    expect(result.valid ? [] : result.errors).toEqual([]);
    const documented = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual(API_ROUTES.map((route) => `${route.method.toUpperCase()} ${route.path.replace(/:(\w+)/g, "{$1}")}`).sort());
    // The filters of GET /v1/runs come from the schema the route validates with.
    const listRuns = document.paths["/v1/runs"]?.["get"];
    expect(listRuns?.parameters?.map((parameter) => parameter.name)).toEqual(["function", "status", "event", "since", "until", "limit", "cursor"]);
    expect(Object.keys(document.paths["/v1/runs/{id}/rerun"]?.["post"]?.responses ?? {})).toContain("201");
    expect(document.paths["/e/{eventKey}"]?.["post"]?.requestBody).toBeDefined();
  });

  it("lists exactly the routes the app serves, and GET / indexes the same list", async () => {
    const app = server();
    const served = new Set(app.routes.filter((route) => route.method !== "ALL" && !route.path.endsWith("*")).map((route) => `${route.method} ${route.path}`));
    const catalogued = new Set(API_ROUTES.map((route) => `${route.method.toUpperCase()} ${route.path}`));
    expect([...served].sort()).toEqual([...catalogued].sort());
    const index = (await (await app.request("/")).json()) as { routes: Record<string, string> };
    expect(Object.keys(index.routes).sort()).toEqual([...catalogued].sort());
    expect(index.routes["POST /v1/runs/:id/cancel"]).toMatch(/\(scope control\)$/);
  });
});
