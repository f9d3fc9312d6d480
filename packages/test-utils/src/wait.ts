// One implementation of these waits, in the simulator's process helpers (the drill and
// the bench use them too); the test suites take them from here.
export { delay as wait, until } from '@freezeguard/simulator/process';
