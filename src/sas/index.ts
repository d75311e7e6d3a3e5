export * from './token.js'
export * from './resource.js'
