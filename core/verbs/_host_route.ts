/**
 * Which transport a host named with `--computer-name` goes to in the verbs that find sessions on it (get, connect).
 *
 * @module
 */
import type { TransportManifest } from "../../plugins/mod.ts";
import { hostMapping } from "../config.ts";
import { type CoreParameters, type Route, route } from "../route.ts";
import { schemeOf, transportForSet } from "../target.ts";
import type { VerbInput } from "./_verb.ts";

/** The parameter set of `enter` and `invoke` that `--computer-name` names a host in. */
const COMPUTER_NAME_SET = "ComputerName";

/**
 * The route to one host named with `--computer-name`. A scheme or the user's mapping picks the transport, as
 * elsewhere. A bare name goes to the default transport (ssh), unless the options given are all of the
 * transport whose own parameter set `--computer-name` is in `enter` and `invoke` (WinRM's `ComputerName`) and
 * not all the default's: `get --computer-name win01 --credential alice` asks win01's WinRM service, as
 * Get-PSSession -ComputerName does, while `get --computer-name db1 -p 2222` still asks db1's sshd. `core` are
 * the calling verb's own parameters; `plainGiven` keeps the options given on the plain route (as `connect` did).
 */
export function hostRoute(input: VerbInput, core: CoreParameters, hostText: string, plainGiven = false): Route {
  const { resolution, entries, config } = input;
  const plain = route({ ...resolution, set: "", given: [] }, core, entries, config, hostText);
  // the plain route, checking the options given against its transport when asked to
  const asPlain = () => plainGiven ? route({ ...resolution, set: "" }, core, entries, config, hostText) : plain;
  const manifests = entries.map((e) => e.manifest);
  const setOwner = transportForSet(COMPUTER_NAME_SET, manifests);
  if (!setOwner || setOwner === plain.entry.manifest || schemeOf(hostText) !== undefined) return asPlain();
  if (hostMapping(config, plain.target.host)) return asPlain();
  const options = resolution.given.filter((name) => !core.has(name));
  const declares = (m: TransportManifest) => options.every((name) => m.parameters.some((p) => p.name === name));
  if (options.length === 0 || declares(plain.entry.manifest) || !declares(setOwner)) return asPlain();
  return route(
    { ...resolution, set: COMPUTER_NAME_SET, values: { ...resolution.values, ComputerName: hostText }, given: [] },
    core,
    entries,
    config,
  );
}
