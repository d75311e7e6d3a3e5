export * from './types.js'
export * from './validate.js'
export * from './twin.js'
export * from './metadata.js'
