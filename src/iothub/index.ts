export * from './propertyBag.js'
export * from './topics.js'
export * from './c2d-queue.js'
export * from './feedback.js'
