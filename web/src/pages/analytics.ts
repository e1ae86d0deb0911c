/** The funnel, event report and visitor pages: one chunk, loaded when one of them is first shown (or soon after sign-in). */
export { EventReportPage } from "./EventReport";
export { FunnelPage, FunnelsPage } from "./Funnels";
export { VisitorPage, VisitorsPage } from "./Visitors";
