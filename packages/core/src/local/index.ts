// VM-local coordination: the processes of one VM share one metadata poller and send one
// approval per event, over a Unix socket, with no option and no service.
export { type LocalCoordinatorOptions, type LocalRole, localCoordinator } from './coordinator.js';
export { acceptTerm, approver, electionStep, superseded, watchdog } from './decide.js';
export type { LocalMember, MemberView } from './leader.js';
export { runtimeCandidates } from './paths.js';
