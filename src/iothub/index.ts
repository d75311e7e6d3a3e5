export * from './propertyBag.js'
export * from './topics.js'
