import { badRequest, conflict, notFound } from "../errors.js";
import type { LinkResolver } from "../links/resolver.js";
import { UTM_KEYS } from "../links/validate.js";
import { UniqueViolation, type Campaign, type Store, type Utm } from "../store/port.js";
import { iso } from "../util/time.js";

export interface CampaignInput {
  name?: string;
  utm?: Utm;
  notes?: string | null;
}

export function publicCampaign(c: Campaign) {
  return { id: c.id, name: c.name, utm: c.utm, notes: c.notes, created_at: iso(c.created_at), updated_at: iso(c.updated_at) };
}

const NAME_RE = /^[\p{L}\p{N}][\p{L}\p{N} _.:/()&+-]{0,127}$/u;

function name(v: string): string {
  const n = v.trim();
  if (!NAME_RE.test(n))
    throw badRequest("name must be 1-128 letters, digits, spaces or _.:/()&+- starting with a letter or digit", { field: "name" });
  return n;
}

function utm(u: Utm): Utm {
  const out: Utm = {};
  for (const k of UTM_KEYS) if (u[k]) out[k] = String(u[k]);
  return out;
}

/**
 * Campaigns: named groups of links that share UTM parameters (the campaign's, overridden by a link's own) and are
 * counted together. A link joins one by its campaign_id.
 */
export class CampaignService {
  constructor(
    private readonly store: Store,
    private readonly resolver: LinkResolver,
  ) {}

  async create(projectId: number, input: CampaignInput): Promise<Campaign> {
    if (input.name === undefined) throw badRequest("name is required", { field: "name" });
    try {
      return await this.store.createCampaign({
        project_id: projectId,
        name: name(input.name),
        utm: utm(input.utm ?? {}),
        notes: input.notes ?? null,
      });
    } catch (e) {
      if (e instanceof UniqueViolation) throw conflict(`a campaign named ${JSON.stringify(input.name.trim())} already exists`, { field: "name" });
      throw e;
    }
  }

  async get(projectId: number, id: number): Promise<Campaign> {
    const c = await this.store.getCampaign(projectId, id);
    if (!c) throw notFound(`campaign ${id}`);
    return c;
  }

  list(projectId: number): Promise<Campaign[]> {
    return this.store.listCampaigns(projectId);
  }

  async update(projectId: number, id: number, input: CampaignInput): Promise<Campaign> {
    await this.get(projectId, id);
    try {
      const c = (await this.store.updateCampaign(projectId, id, {
        name: input.name === undefined ? undefined : name(input.name),
        utm: input.utm === undefined ? undefined : utm(input.utm),
        notes: input.notes,
      }))!;
      // the links' locations carry the campaign's UTM parameters
      this.resolver.invalidateAll();
      return c;
    } catch (e) {
      if (e instanceof UniqueViolation) throw conflict(`a campaign named ${JSON.stringify(input.name?.trim())} already exists`, { field: "name" });
      throw e;
    }
  }

  /** Deletes the campaign; its links stay (without a campaign) and its clicks stay in the event log. */
  async delete(projectId: number, id: number): Promise<void> {
    await this.get(projectId, id);
    await this.store.deleteCampaign(projectId, id);
    this.resolver.invalidateAll();
  }
}
