/** The CLI's name for each library option, so that library messages read in flags: derived from the option table. */
export { flagName } from '../shared/options/index.js';
