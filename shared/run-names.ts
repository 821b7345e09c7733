const ADJECTIVES = [
  'brave', 'calm', 'clever', 'cowardly', 'eager', 'fancy', 'gentle', 'happy', 'honest', 'jolly',
  'kind', 'lazy', 'lucky', 'mighty', 'nimble', 'polite', 'proud', 'quick', 'quiet', 'rapid',
  'shady', 'shiny', 'silly', 'slim', 'smart', 'sunny', 'swift', 'tidy', 'wise', 'witty',
];
const ANIMALS = [
  'badger', 'beaver', 'bison', 'cat', 'cobra', 'crab', 'crane', 'deer', 'dodo', 'eagle',
  'falcon', 'ferret', 'fox', 'gecko', 'goose', 'heron', 'ibis', 'koala', 'lemur', 'lynx',
  'mole', 'moose', 'newt', 'octopus', 'otter', 'owl', 'panda', 'puma', 'seal', 'shrimp',
];

/**
 * A run name of the form `adjective-animal-N` (e.g. `slim-octopus-3`). `N` counts the runs that
 * already used the same pair, so names stay unique and short without a global counter.
 */
export function newRunName(taken: (prefix: string) => number, random: () => number = Math.random): string {
  const adjective = ADJECTIVES[Math.floor(random() * ADJECTIVES.length)]!;
  const animal = ANIMALS[Math.floor(random() * ANIMALS.length)]!;
  const prefix = `${adjective}-${animal}`;
  return `${prefix}-${taken(prefix) + 1}`;
}

export const RUN_NAME_PATTERN = /^[a-z]+-[a-z]+-\d+$/;
