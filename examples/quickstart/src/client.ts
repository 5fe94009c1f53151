import { Stepwise } from "@stepwise/core";

/** The quickstart app's client; `send()` reaches `stepwise dev` on 127.0.0.1:8288. */
export const stepwise = new Stepwise({ id: "quickstart" });
