export { EXIT } from './command.js';
export { commands, main } from './main.js';
