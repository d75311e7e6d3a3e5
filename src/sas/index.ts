export * from './token.js'
export * from './resource.js'
export * from './connection-string.js'
