/** The funnels section: the list of saved funnels, one funnel (builder, result, saving), and what the event report and visitor pages share with them. */
export { FunnelsPage } from "./funnels/List";
export { FunnelPage } from "./funnels/FunnelPage";
export { eventReportHref, useEventNames } from "./funnels/names";
