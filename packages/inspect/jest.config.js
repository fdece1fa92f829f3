module.exports = require('@x/testing/jest-preset');
