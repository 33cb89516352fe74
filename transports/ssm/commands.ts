/**
 * Commands over Session Manager (`remote invoke --target i-… -- cmd`), run as the AWS CLI runs them with
 * `aws ssm start-session --document-name AWS-StartNonInteractiveCommand --parameters command=…`: the
 * agent runs the command without a terminal and closes the session when it ends.
 *
 * What comes back depends on the document, as the agent sends it (aws/amazon-ssm-agent
 * `agent/session/shell/shell.go`): with AWS-StartNonInteractiveCommand, stdout and stderr merged and no
 * exit status (remote exits 0, as the plugin does); with a document whose properties set
 * `separateOutputStream`, stderr apart (StdErr payloads) and the exit status (`EXIT_CODE: n`), which
 * remote returns as its own. `--document-name AWS-StartInteractiveCommand` runs it in a terminal.
 * Stdin is forwarded as typed; the data channel has no end-of-file, so a command that reads its
 * input to the end waits until it is stopped.
 *
 * @module
 */
import type { StartSessionInput } from "./control_plane.ts";

/** The document a command runs with unless `--document-name` names another. */
export const COMMAND_DOCUMENT = "AWS-StartNonInteractiveCommand";
/** The document a command asking for a terminal (`remote invoke -t`) runs with. */
export const TERMINAL_COMMAND_DOCUMENT = "AWS-StartInteractiveCommand";

/** StartSession's input for `command`: the documents' `command` parameter, the user's others kept. */
export function commandInput(base: StartSessionInput, command: string, terminal = false): StartSessionInput {
  return {
    ...base,
    DocumentName: base.DocumentName ?? (terminal ? TERMINAL_COMMAND_DOCUMENT : COMMAND_DOCUMENT),
    Parameters: { ...base.Parameters, command: [command] },
  };
}
