import type { FastifyInstance } from "fastify";
import type { EventWriter } from "../events/writer.js";
import type { Analytics } from "../funnels/source.js";
import type { Store } from "../store/port.js";
import type { VisitorService } from "../visitors/service.js";

export interface HiiTrackDeps {
  store: Store;
  writer: EventWriter;
  analytics: Analytics;
  visitors: VisitorService;
}

/** The HiiTrack dialect (reference section 5). */
export async function hiitrackRoutes(app: FastifyInstance, deps: HiiTrackDeps): Promise<void> {
  void app;
  void deps;
}
