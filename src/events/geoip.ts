import maxmind, { type CountryResponse, type Reader } from "maxmind";
import { ConfigError } from "../config.js";

/** Country of an IP from a MaxMind / DB-IP .mmdb database (GeoLite2-Country or -City, dbip-country-lite). */
export class GeoIp {
  private constructor(private readonly reader: Reader<CountryResponse>) {}

  static async open(file: string): Promise<GeoIp> {
    try {
      return new GeoIp(await maxmind.open<CountryResponse>(file, { cache: { max: 50_000 } }));
    } catch (e) {
      throw new ConfigError("CLICKTRAIL_GEOIP_DB", `cannot open ${file} as a MaxMind database: ${(e as Error).message}`);
    }
  }

  /** ISO 3166-1 alpha-2 code, or null when the address is not in the database. */
  country(ip: string): string | null {
    if (!ip || !maxmind.validate(ip)) return null;
    const r = this.reader.get(ip);
    return r?.country?.iso_code ?? r?.registered_country?.iso_code ?? null;
  }
}
