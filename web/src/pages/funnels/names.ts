import { api, type EventNames } from "../../api";
import { useLoad } from "../../hooks";

export const loadNames = (signal: AbortSignal) => api<EventNames>("GET", "/api/v1/reports/events", { signal });

/** The project's event names and visitor property names (empty lists when they can't be read: the inputs take any text). */
export function useEventNames() {
  return useLoad((signal) => loadNames(signal).catch(() => ({ events: [], properties: [] }) as EventNames), []);
}

export const eventReportHref = (name: string) => `#/reports/${encodeURIComponent(name)}`;
